#pragma once

// A guest's TCP at the frame level, shared by the -net user benchmark and
// the TCP NAT load test: it plays 10.0.2.15 (52:54:00:12:34:56) behind the
// gateway 10.0.2.2 and talks to whatever stack its two callbacks lead to
// (reel's UserNet through a hub port, libslirp through slirp_input and its
// send_packet callback), so both stacks see the same frames.
//
// Deliberately small: MSS 1460 and a 65535-byte window without scaling
// or timestamps, a bounded window of data in flight, delayed ACKs every
// second segment, FIN. No retransmission timer: the links it is used on
// never drop, so it only detects what would be loss (a sequence gap,
// duplicate data, duplicate ACKs) and counts it; after three duplicate
// ACKs, or when its owner calls rewind_stalled(), it goes back to the
// first unacknowledged byte so that a test still finishes and shows the
// count instead of hanging.
//
// Also here: the loopback servers those tests need (a sink, a source and
// an echo server for many connections at once, on one poll thread each)
// and a helper that raises the descriptor limit.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/frame_port.h"
#include "core/machine.h"
#include "netstack/hub.h"
#include "netstack/user_net.h"
#include "netstack/wire/arp.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"
#include "replay/live_host_io.h"
#include "tests/guests/runtime/stream_hash.h"

namespace reel::test {

inline constexpr wire::MacAddress kDriverGuestMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
inline constexpr wire::MacAddress kDriverGatewayMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
inline constexpr u32 kDriverGuestIp = 0x0a00020f;    // 10.0.2.15
inline constexpr u32 kDriverGatewayIp = 0x0a000202;  // 10.0.2.2

// Byte `offset` of a stream: the prefix, then the guests' shared pattern
// (indexed by the absolute offset, so a stream is the same however it is
// cut into segments).
inline u8 stream_byte(std::span<const u8> prefix, u32 seed, u64 offset) {
  return offset < prefix.size() ? prefix[offset] : reel_pattern_byte(seed, static_cast<u32>(offset));
}

// stream_byte() for [offset, offset + out.size()), a word of the pattern
// at a time (the pattern derives 4 bytes from one hash): the benchmark's
// guest should cost little next to the stacks it measures.
inline void fill_stream(std::span<const u8> prefix, u32 seed, u64 offset, std::span<u8> out) {
  std::size_t i = 0;
  for (; i < out.size() && (offset + i < prefix.size() || ((offset + i) & 3) != 0); ++i)
    out[i] = stream_byte(prefix, seed, offset + i);
  for (; i + 4 <= out.size(); i += 4) {
    const u32 at = static_cast<u32>(offset + i);
    u32 x = ((at >> 2) ^ (seed * 0x85ebca6bu)) * 0x9e3779b1u;
    x ^= x >> 15;
    x *= 0x2c1b3c6du;
    x ^= x >> 12;
    out[i] = static_cast<u8>(x);
    out[i + 1] = static_cast<u8>(x >> 8);
    out[i + 2] = static_cast<u8>(x >> 16);
    out[i + 3] = static_cast<u8>(x >> 24);
  }
  for (; i < out.size(); ++i) out[i] = stream_byte(prefix, seed, offset + i);
}

// FNV-1a 64 of the first `length` bytes of a stream, as the receivers hash.
inline u64 stream_hash(std::span<const u8> prefix, u32 seed, u64 length) {
  u64 h = REEL_FNV64_OFFSET;
  for (u64 i = 0; i < length; ++i) {
    h ^= stream_byte(prefix, seed, i);
    h *= REEL_FNV64_PRIME;
  }
  return h;
}

inline bool seq_before(u32 a, u32 b) { return static_cast<i32>(a - b) < 0; }

class GuestTcpDriver {
 public:
  // Hands one frame from the guest to the stack.
  using Transmit = std::function<void(std::span<const u8>)>;

  struct Options {
    u16 first_port = 40000;      // local port of connection 0; one more for each
    u32 max_in_flight = 65535;   // below the peer's window when smaller
    u16 receive_window = 65535;  // what we advertise (we consume at once)
    u16 mss = 1460;              // what our SYN announces
    bool hash_received = true;   // FNV-1a 64 over the bytes received
    u32 ack_every = 2;           // delayed ACK: one per this many segments
    // Rounds of queued frames (ACKs and what they provoke) one pump() sends;
    // 0: until the stack stops answering. 1 makes a slow guest, one that
    // answers once per loop round, as one interrupt per slice would.
    u32 batches_per_pump = 0;
  };

  struct Connection {
    u16 local_port = 0;
    u16 remote_port = 0;
    u32 remote_ip = 0;
    bool syn_sent = false;
    bool established = false;
    bool reset = false;  // a RST arrived (or the SYN was refused)
    // Sending: offsets count stream bytes, the sequence number of offset k
    // is iss + 1 + k.
    u32 iss = 0;
    u32 snd_wnd = 0;
    u16 peer_mss = 536;
    std::vector<u8> prefix;
    u32 seed = 0;
    u64 send_length = 0;
    u64 sent = 0;      // offset of the next byte to send
    u64 sent_max = 0;  // the highest offset ever sent (sent goes back on a rewind)
    u64 acked = 0;     // bytes the peer acknowledged
    bool close_requested = false;
    bool fin_sent = false;
    bool fin_acked = false;
    // Receiving.
    u32 rcv_nxt = 0;
    u32 rcv_adv = 0;  // the right edge of the window we last advertised
    u64 received = 0;
    u64 received_hash = REEL_FNV64_OFFSET;
    bool fin_received = false;
    u32 unacked_segments = 0;
    bool ack_pending = false;
    // What would be loss on a link that drops, or a peer misbehaving.
    u64 gaps = 0;               // data beyond rcv_nxt (something before it is missing)
    u32 first_gap = 0;          // how far beyond rcv_nxt the first such segment started
    u64 duplicates = 0;         // data before rcv_nxt (sent again)
    u64 window_violations = 0;  // data beyond the window we advertised
    u64 window_probes = 0;      // probes of our closed window (not loss)
    u64 dup_acks = 0;
    u64 rewinds = 0;  // went back to the first unacknowledged byte
    u32 dup_ack_run = 0;

    bool closed_cleanly() const { return fin_sent && fin_acked && fin_received && !reset; }
    bool all_acked() const { return acked == send_length; }
  };

  struct Counters {
    u64 frames_out = 0;
    u64 frames_in = 0;
    u64 bytes_out = 0;  // payload
    u64 bytes_in = 0;
    u64 arp_replies_sent = 0;
    u64 ignored_frames = 0;       // not IPv4/TCP/ARP for us
    u64 bad_frames = 0;           // failed a parser (checksums included)
    u64 unknown_segments = 0;     // to a port we have no connection on
    u64 unexpected_segments = 0;  // before the handshake, or a SYN-ACK with a wrong ACK
  };

  GuestTcpDriver(Transmit transmit, Options options) : m_transmit(std::move(transmit)), m_options(options) {}
  explicit GuestTcpDriver(Transmit transmit) : GuestTcpDriver(std::move(transmit), Options{}) {}

  void reserve(std::size_t connections) {
    m_connections.reserve(connections);
    m_ack_owed.reserve(connections);
    m_owed_now.reserve(connections);
  }

  // Asks who has the gateway: tells a stack that learns from ARP (libslirp)
  // our MAC. Sent at the next pump().
  void announce() {
    wire::ArpFields a;
    a.operation = wire::ArpOperation::request;
    a.sender_mac = kDriverGuestMac;
    a.sender_ip = kDriverGuestIp;
    a.target_ip = kDriverGatewayIp;
    queue_arp(a, wire::kBroadcastMac);
  }

  // A new connection to remote_ip:remote_port; the SYN goes out at the next
  // pump(). Returns its index.
  std::size_t open(u16 remote_port, u32 remote_ip = kDriverGatewayIp) {
    Connection c;
    c.local_port = static_cast<u16>(m_options.first_port + m_connections.size());
    c.remote_port = remote_port;
    c.remote_ip = remote_ip;
    // Fixed, spread out, and wrapping for some connections.
    c.iss = 0x10000000u * static_cast<u32>(m_connections.size() % 16) +
            0x9e3779b1u * static_cast<u32>(m_connections.size());
    m_connections.push_back(std::move(c));
    m_active = true;
    return m_connections.size() - 1;
  }

  // The stream this connection sends: `prefix`, then the pattern for
  // `seed`, `length` bytes in all. Call once, before or after the handshake.
  void send_stream(std::size_t index, std::vector<u8> prefix, u32 seed, u64 length) {
    Connection& c = m_connections[index];
    c.prefix = std::move(prefix);
    c.seed = seed;
    c.send_length = length;
    m_active = true;
  }
  // Sends FIN once everything queued is out.
  void close(std::size_t index) {
    m_connections[index].close_requested = true;
    m_active = true;
  }

  // Sends what is due: queued ARP and ACK frames, SYNs, data the windows
  // allow, FINs, the ACKs still owed. Returns the number of frames sent.
  std::size_t pump() {
    const u64 before = m_counters.frames_out;
    flush_queued();
    // The stack may answer (and owe more ACKs) while these go out: those
    // wait for the next pump.
    m_owed_now.clear();
    m_owed_now.swap(m_ack_owed);
    if (m_active) {
      m_active = false;
      for (std::size_t i = 0; i < m_connections.size(); ++i) output(i);
    } else {
      for (std::size_t i : m_owed_now) output(i);
    }
    flush_queued();
    return static_cast<std::size_t>(m_counters.frames_out - before);
  }

  // A frame from the stack. Never transmits from here (libslirp's
  // send_packet must not re-enter slirp_input): replies wait for pump().
  void receive_frame(std::span<const u8> frame) {
    ++m_counters.frames_in;
    const auto eth = wire::EthernetFrame::parse(frame);
    if (!eth) {
      ++m_counters.bad_frames;
      return;
    }
    if (eth->ether_type() == static_cast<u16>(wire::EtherType::arp)) {
      arp_input(eth->payload());
      return;
    }
    if (eth->ether_type() != static_cast<u16>(wire::EtherType::ipv4) ||
        eth->destination() != kDriverGuestMac) {
      ++m_counters.ignored_frames;
      return;
    }
    const auto ip = wire::Ipv4Packet::parse(eth->payload());
    if (!ip) {
      ++m_counters.bad_frames;
      return;
    }
    if (ip->destination() != kDriverGuestIp || ip->protocol() != static_cast<u8>(wire::IpProtocol::tcp)) {
      ++m_counters.ignored_frames;
      return;
    }
    const auto tcp = wire::TcpSegment::parse(*ip);
    if (!tcp) {
      ++m_counters.bad_frames;
      return;
    }
    const u16 port = tcp->destination_port();
    if (port < m_options.first_port || std::size_t{port} - m_options.first_port >= m_connections.size()) {
      ++m_counters.unknown_segments;
      return;
    }
    const std::size_t index = port - m_options.first_port;
    Connection& c = m_connections[index];
    if (tcp->source_port() != c.remote_port || ip->source() != c.remote_ip) {
      ++m_counters.unknown_segments;
      return;
    }
    segment_input(index, c, *tcp);
  }

  // Goes back to the first unacknowledged byte (and resends a SYN not
  // answered) on every connection with something outstanding: the owner's
  // retransmission timeout, for links that turned out to drop.
  void rewind_stalled() {
    for (std::size_t i = 0; i < m_connections.size(); ++i) {
      Connection& c = m_connections[i];
      if (c.reset) continue;
      if (c.syn_sent && !c.established) {
        c.syn_sent = false;
        ++c.rewinds;
      } else if (c.sent != c.acked || (c.fin_sent && !c.fin_acked)) {
        rewind(c);
      }
    }
    m_active = true;
  }

  // Changes the window we advertise (0: the guest stops reading) and owes
  // every connection an ACK that says so.
  void set_receive_window(u16 window) {
    m_options.receive_window = window;
    for (std::size_t i = 0; i < m_connections.size(); ++i)
      if (m_connections[i].established && !m_connections[i].reset) owe_ack(i, m_connections[i]);
  }

  // Something is ready to send at the next pump().
  bool busy() const { return m_active || !m_ack_owed.empty() || !m_queued.empty(); }

  const std::vector<Connection>& connections() const { return m_connections; }
  const Connection& connection(std::size_t index) const { return m_connections[index]; }
  const Counters& counters() const { return m_counters; }
  // Sums over all connections of the loss signs.
  u64 loss_signs() const {
    u64 n = 0;
    for (const Connection& c : m_connections)
      n += c.gaps + c.duplicates + c.window_violations + c.dup_acks + c.rewinds;
    return n;
  }

 private:
  static constexpr std::size_t kHeaders = wire::kEthernetHeaderSize + wire::kIpv4MinHeaderSize;

  static u32 snd_nxt(const Connection& c) {
    return c.iss + 1 + static_cast<u32>(c.sent) + (c.fin_sent ? 1 : 0);
  }

  void rewind(Connection& c) {
    c.sent = c.acked;
    if (!c.fin_acked) c.fin_sent = false;
    ++c.rewinds;
  }

  void arp_input(std::span<const u8> payload) {
    const auto arp = wire::ArpPacket::parse(payload);
    if (!arp) {
      ++m_counters.bad_frames;
      return;
    }
    if (arp->operation() != wire::ArpOperation::request || arp->target_ip() != kDriverGuestIp) {
      ++m_counters.ignored_frames;
      return;
    }
    wire::ArpFields a;
    a.operation = wire::ArpOperation::reply;
    a.sender_mac = kDriverGuestMac;
    a.sender_ip = kDriverGuestIp;
    a.target_mac = arp->sender_mac();
    a.target_ip = arp->sender_ip();
    queue_arp(a, arp->sender_mac());
    ++m_counters.arp_replies_sent;
  }

  void queue_arp(const wire::ArpFields& a, const wire::MacAddress& destination) {
    std::vector<u8> payload(wire::kArpPacketSize);
    wire::build_arp(payload, a);
    std::vector<u8> frame(60, 0);  // padded to Ethernet's minimum
    wire::build_ethernet(frame, destination, kDriverGuestMac, static_cast<u16>(wire::EtherType::arp),
                         payload);
    m_queued.push_back(std::move(frame));
  }

  void segment_input(std::size_t index, Connection& c, const wire::TcpSegment& tcp) {
    if (tcp.has(wire::kTcpRst)) {
      c.reset = true;
      return;
    }
    if (!c.established) {
      if (!c.syn_sent || !tcp.has(wire::kTcpSyn) || !tcp.has(wire::kTcpAck) ||
          tcp.acknowledgment() != c.iss + 1) {
        ++m_counters.unexpected_segments;
        return;
      }
      c.established = true;
      c.rcv_nxt = tcp.sequence() + 1;
      c.rcv_adv = c.rcv_nxt + m_options.receive_window;
      c.snd_wnd = tcp.window();  // never scaled in a SYN
      c.peer_mss = tcp.options().mss.value_or(536);
      owe_ack(index, c);
      return;
    }
    if (tcp.has(wire::kTcpSyn)) {
      // Our ACK of the SYN-ACK was lost (or the peer is confused).
      ++c.duplicates;
      owe_ack(index, c);
      return;
    }
    const bool had_outstanding = c.sent != c.acked || (c.fin_sent && !c.fin_acked);
    if (tcp.has(wire::kTcpAck)) ack_input(index, c, tcp, had_outstanding);
    const auto payload = tcp.payload();
    bool fin = tcp.has(wire::kTcpFin);
    const u32 room = seq_before(c.rcv_nxt, c.rcv_adv) ? c.rcv_adv - c.rcv_nxt : 0;
    if (room == 0 && payload.size() <= 1 && !fin && c.established && !c.fin_received &&
        (payload.size() == 1 || tcp.sequence() == c.rcv_nxt - 1)) {
      // A window probe (RFC 9293 3.8.6.1): refused, answered with our
      // (still closed) window.
      ++c.window_probes;
      queue_ack(c);
      return;
    }
    if (payload.empty() && !fin) return;
    u32 seq = tcp.sequence();
    std::span<const u8> data = payload;
    if (seq_before(seq, c.rcv_nxt)) {
      const u32 old = c.rcv_nxt - seq;
      ++c.duplicates;
      if (old >= data.size() + (fin ? 1 : 0)) {
        queue_ack(c);
        return;
      }
      data = old <= data.size() ? data.subspan(old) : std::span<const u8>{};
      seq = c.rcv_nxt;
    }
    if (seq != c.rcv_nxt) {
      if (c.gaps++ == 0) c.first_gap = seq - c.rcv_nxt;
      queue_ack(c);  // one duplicate ACK per segment, so the peer can fast-retransmit
      return;
    }
    if (seq_before(c.rcv_adv, seq + static_cast<u32>(data.size()))) {
      // Beyond the window we offered: kept only up to its edge, as a real
      // receiver with a full buffer would.
      ++c.window_violations;
      data = data.first(room);
      fin = false;
      if (data.empty()) {
        queue_ack(c);
        return;
      }
    }
    if (!data.empty()) {
      if (m_options.hash_received)
        c.received_hash = reel_fnv64_update(c.received_hash, data.data(), static_cast<u32>(data.size()));
      c.received += data.size();
      m_counters.bytes_in += data.size();
      c.rcv_nxt += static_cast<u32>(data.size());
    }
    if (fin && !c.fin_received) {
      c.fin_received = true;
      c.rcv_nxt += 1;
      queue_ack(c);
      return;
    }
    if (++c.unacked_segments >= m_options.ack_every)
      queue_ack(c);
    else
      owe_ack(index, c);
  }

  void ack_input(std::size_t index, Connection& c, const wire::TcpSegment& tcp, bool had_outstanding) {
    const u32 una = c.iss + 1 + static_cast<u32>(c.acked) + (c.fin_acked ? 1 : 0);
    const u32 ack = tcp.acknowledgment();
    const u32 advance = ack - una;
    const u64 outstanding = c.sent_max - c.acked + (c.fin_sent && !c.fin_acked ? 1 : 0);
    const u32 old_window = c.snd_wnd;
    if (static_cast<i32>(advance) < 0) return;  // an old ACK
    if (advance > outstanding) {
      // Acknowledges what we never sent: a peer bug. Counted as a gap.
      ++c.gaps;
      return;
    }
    c.snd_wnd = tcp.window();
    if (advance > 0) {
      const u64 data_acked = std::min<u64>(advance, c.sent_max - c.acked);
      c.acked += data_acked;
      c.sent = std::max(c.sent, c.acked);
      if (advance > data_acked) c.fin_acked = true;
      c.dup_ack_run = 0;
      m_active = true;
      (void)index;
      return;
    }
    if (c.snd_wnd != old_window) {
      m_active = true;  // a window update
      return;
    }
    if (had_outstanding && tcp.payload().empty() && !tcp.has(wire::kTcpFin)) {
      ++c.dup_acks;
      if (++c.dup_ack_run == 3) {
        rewind(c);
        c.dup_ack_run = 0;
        m_active = true;
      }
    }
  }

  void owe_ack(std::size_t index, Connection& c) {
    if (!c.ack_pending) {
      c.ack_pending = true;
      m_ack_owed.push_back(index);
    }
  }

  void queue_ack(Connection& c) {
    m_queued.emplace_back();
    build_segment(m_queued.back(), c, snd_nxt(c), wire::kTcpAck, 0, {});
    c.ack_pending = false;
    c.unacked_segments = 0;
  }

  // Segments for connection `index`: SYN, data, FIN, an owed ACK.
  void output(std::size_t index) {
    Connection& c = m_connections[index];
    if (c.reset) return;
    if (!c.syn_sent) {
      c.syn_sent = true;
      wire::TcpOptions options;
      options.mss = m_options.mss;
      send_segment(c, c.iss, wire::kTcpSyn, &options, 0);
      return;
    }
    if (!c.established) return;
    const u32 mss = std::min<u32>(c.peer_mss, m_options.mss);
    bool sent_any = false;
    // Re-read the connection on every round: for reel the stack answers
    // inside transmit, and those answers (ACKs, window updates) land here.
    while (c.sent < c.send_length && !c.reset) {
      const u64 in_flight = c.sent - c.acked;
      const u64 window = std::min<u64>(c.snd_wnd, m_options.max_in_flight);
      if (in_flight >= window) break;
      const u64 remaining = c.send_length - c.sent;
      const u32 length = static_cast<u32>(std::min<u64>({remaining, window - in_flight, mss}));
      // No runts while an ACK could still open the window (RFC 9293 3.8.6.2.1).
      if (length < mss && length < remaining && in_flight > 0) break;
      const u32 seq = c.iss + 1 + static_cast<u32>(c.sent);
      const u8 flags = wire::kTcpAck | (length == remaining ? wire::kTcpPsh : 0);
      send_segment(c, seq, flags, nullptr, length);
      sent_any = true;
    }
    if (c.close_requested && !c.fin_sent && c.sent == c.send_length && !c.reset) {
      c.fin_sent = true;
      send_segment(c, c.iss + 1 + static_cast<u32>(c.sent), wire::kTcpFin | wire::kTcpAck, nullptr, 0);
      sent_any = true;
    }
    if (c.ack_pending && !sent_any) {
      send_segment(c, snd_nxt(c), wire::kTcpAck, nullptr, 0);
    }
  }

  // Builds and sends one segment; data segments take their payload from
  // the stream at c.sent and advance it.
  void send_segment(Connection& c, u32 seq, u8 flags, const wire::TcpOptions* options, u32 length) {
    std::vector<u8>& frame = m_frame;
    if (length > 0) {
      // Payload first, in place, so no builder copies it again.
      const std::size_t at = kHeaders + wire::kTcpMinHeaderSize;
      frame.resize(at + length);
      fill_stream(c.prefix, c.seed, c.sent, std::span(frame).subspan(at, length));
      c.sent += length;
      c.sent_max = std::max(c.sent_max, c.sent);
      m_counters.bytes_out += length;
    }
    build_segment(frame, c, seq, flags, length, options ? *options : wire::TcpOptions{});
    ++m_counters.frames_out;
    m_transmit(frame);
  }

  // Writes Ethernet, IPv4 and TCP headers around a payload of `length`
  // bytes that already sits at its place (after a 20-byte TCP header).
  void build_segment(std::vector<u8>& frame, Connection& c, u32 seq, u8 flags, u32 length,
                     const wire::TcpOptions& options) {
    const std::size_t tcp_header = wire::tcp_header_length(options).value_or(wire::kTcpMinHeaderSize);
    // Options ride only on SYNs, which carry no data, so a payload always
    // sits right after a 20-byte header.
    if (length == 0) frame.assign(kHeaders + tcp_header, 0);
    std::span<u8> all(frame);
    wire::TcpFields t;
    t.source_port = c.local_port;
    t.destination_port = c.remote_port;
    t.sequence = seq;
    t.acknowledgment = (flags & wire::kTcpAck) ? c.rcv_nxt : 0;
    t.flags = flags;
    if (flags & wire::kTcpSyn) {
      t.window = m_options.receive_window;
    } else {
      // The right edge never moves left (RFC 9293 3.8.6): a smaller
      // window only stops it from moving on.
      const u32 edge = c.rcv_nxt + m_options.receive_window;
      if (!c.established || seq_before(c.rcv_adv, edge)) c.rcv_adv = edge;
      t.window = static_cast<u16>(std::min<u32>(c.rcv_adv - c.rcv_nxt, 65535));
    }
    t.options = options;
    const std::span<u8> l4 = all.subspan(kHeaders);
    const auto tcp_size = wire::build_tcp(l4, kDriverGuestIp, c.remote_ip, t, l4.subspan(tcp_header, length));
    wire::Ipv4Fields f;
    f.source = kDriverGuestIp;
    f.destination = c.remote_ip;
    f.protocol = static_cast<u8>(wire::IpProtocol::tcp);
    f.identification = m_ip_id++;
    f.dont_fragment = true;
    const std::span<u8> l3 = all.subspan(wire::kEthernetHeaderSize);
    const auto ip_size = wire::build_ipv4(l3, f, l3.subspan(wire::kIpv4MinHeaderSize, tcp_size.value_or(0)));
    wire::build_ethernet(all, kDriverGatewayMac, kDriverGuestMac, static_cast<u16>(wire::EtherType::ipv4),
                         all.subspan(wire::kEthernetHeaderSize, ip_size.value_or(0)));
    if (flags & wire::kTcpAck) {
      c.ack_pending = false;
      c.unacked_segments = 0;
    }
  }

  void flush_queued() {
    // Frames queued while these go out (the stack answering inside
    // transmit) go in the next batch.
    for (u32 batch_count = 0; !m_queued.empty(); ++batch_count) {
      if (m_options.batches_per_pump != 0 && batch_count == m_options.batches_per_pump) {
        m_active = true;
        return;
      }
      std::vector<std::vector<u8>> batch;
      batch.swap(m_queued);
      for (const auto& frame : batch) {
        ++m_counters.frames_out;
        m_transmit(frame);
      }
    }
  }

  Transmit m_transmit;
  Options m_options;
  std::vector<Connection> m_connections;
  std::vector<std::vector<u8>> m_queued;  // ARP and delayed-ACK frames built on receive
  std::vector<std::size_t> m_ack_owed;    // connections with an ACK still to send
  std::vector<std::size_t> m_owed_now;
  std::vector<u8> m_frame;
  u16 m_ip_id = 0;
  bool m_active = false;  // something beyond owed ACKs may be sendable
  Counters m_counters;
};

// ---- reel's side: UserNet on a hub, a port for the driver, a Machine on
// a LiveHostIO, and the loop a machine would run around them.

class DriverPort : public FramePort {
 public:
  void receive_frame(std::span<const u8> frame) override {
    if (on_frame) on_frame(frame);
  }
  std::string describe_port() const override { return "guest tcp driver"; }
  void send(std::span<const u8> frame) { transmit(frame); }
  std::function<void(std::span<const u8>)> on_frame;
};

class ReelUserNetHarness {
 public:
  explicit ReelUserNetHarness(GuestTcpDriver::Options options = {})
      : m_live(live_options()),
        m_machine(machine_config(), m_live),
        m_hub(0),
        m_net("user.0", m_machine, UserNetConfig{}),
        m_driver(
            [this](std::span<const u8> frame) {
              if (m_drop_to_stack && ++m_sent_to_stack % m_drop_to_stack == 0) {
                ++m_dropped_to_stack;
                return;
              }
              m_port.send(frame);
            },
            options) {
    m_hub.attach(m_port, "guest");
    m_hub.attach(m_net, "user.0");
    m_port.on_frame = [this](std::span<const u8> frame) {
      if (m_drop_to_guest && ++m_sent_to_guest % m_drop_to_guest == 0) {
        ++m_dropped_to_guest;
        return;
      }
      m_driver.receive_frame(frame);
    };
  }

  // A lossy link: drops every n-th frame in each direction (0: none).
  void set_loss(u32 every_to_stack, u32 every_to_guest) {
    m_drop_to_stack = every_to_stack;
    m_drop_to_guest = every_to_guest;
  }
  u64 dropped_to_stack() const { return m_dropped_to_stack; }
  u64 dropped_to_guest() const { return m_dropped_to_guest; }

  // One round: the guest's frames out, host events in (LiveHostIO's
  // boundary, as the machine loop calls it), virtual time on by
  // `advance_ns` and the timers due. Returns whether any frame moved.
  bool step(u64 advance_ns) {
    const u64 in_before = m_driver.counters().frames_in;
    const std::size_t out = m_driver.pump();
    m_live.boundary(m_machine);
    if (advance_ns) advance(advance_ns);
    return out > 0 || m_driver.counters().frames_in != in_before;
  }
  void advance(u64 ns) {
    m_machine.clock().advance_idle_to(m_machine.clock().now_ns() + ns);
    m_machine.scheduler().run_due(m_machine.clock().now_ns());
  }
  // A round in which nothing moved: what the machine loop does when the
  // guest halts. LiveHostIO::idle waits on real time, up to `max_ns` or the
  // next timer, for a host socket to have something, and virtual time
  // follows the real time that passed; then the timers due run.
  void idle(u64 max_ns) {
    const u64 now = m_machine.clock().now_ns();
    u64 deadline = now + max_ns;
    if (const auto next = m_machine.scheduler().next_deadline())
      deadline = std::min(deadline, std::max(*next, now));
    const std::optional<u64> woke = m_live.idle(deadline);
    m_machine.clock().advance_idle_to(std::max(now, std::min(woke.value_or(deadline), deadline)));
    m_machine.scheduler().run_due(m_machine.clock().now_ns());
  }

  GuestTcpDriver& driver() { return m_driver; }
  UserNet& net() { return m_net; }
  Machine& machine() { return m_machine; }
  LiveHostIO& live() { return m_live; }

 private:
  static LiveHostIO::Options live_options() {
    LiveHostIO::Options o;
    o.pacing = true;  // only idle() waits on real time
    o.input_fd = -1;
    return o;
  }
  static MachineConfig machine_config() {
    MachineConfig c;
    c.ram_bytes = 1u << 20;  // no guest code runs
    return c;
  }

  LiveHostIO m_live;
  Machine m_machine;
  Hub m_hub;
  UserNet m_net;
  DriverPort m_port;
  u32 m_drop_to_stack = 0;
  u32 m_drop_to_guest = 0;
  u64 m_sent_to_stack = 0;
  u64 m_sent_to_guest = 0;
  u64 m_dropped_to_stack = 0;
  u64 m_dropped_to_guest = 0;
  GuestTcpDriver m_driver;
};

// ---- Host side

// Lifts the soft descriptor limit toward `wanted`; returns the limit now.
inline rlim_t raise_fd_limit(rlim_t wanted) {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  if (r.rlim_cur < wanted) {
    r.rlim_cur = std::min(wanted, r.rlim_max);
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur;
}

// A TCP server on 127.0.0.1 for many connections at once, on one poll
// thread:
//   sink:   reads everything, closes at EOF;
//   source: writes source_length pattern bytes (seed source_seed), then
//           closes, reading and discarding whatever arrives;
//   echo:   writes back what it reads. A stream may start with a 4-byte
//           little-endian header: the stream's total length in the low
//           31 bits and, in bit 31, "close first": the server then shuts
//           its side once it has echoed the whole stream, without waiting
//           for the client's FIN. Otherwise it closes after EOF and echo.
// Each connection's bytes are counted and (when hashing) hashed.
class LoopbackStreamServer {
 public:
  enum class Mode : u8 { sink, source, echo };
  struct Options {
    Mode mode = Mode::sink;
    bool hash = true;
    u64 source_length = 0;
    u32 source_seed = 1;
    std::size_t max_connections = 4096;  // reserved up front (no allocation while serving)
    // Reads nothing until release(), so that the kernel's buffers fill and
    // the client's sends stall (a host that stopped reading).
    bool hold = false;
  };
  struct Record {
    u64 bytes_in = 0;
    u64 hash_in = REEL_FNV64_OFFSET;
    u64 bytes_out = 0;
    bool eof = false;     // the client's FIN arrived
    bool shut = false;    // we sent our FIN
    bool closed = false;  // done and closed
    bool error = false;   // a read or write error (reset)
  };

  explicit LoopbackStreamServer(Options options) : m_options(options) {
    m_records.reserve(options.max_connections);
    m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (m_listen < 0 || ::bind(m_listen, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(m_listen, 4096) != 0) {
      if (m_listen >= 0) ::close(m_listen);
      m_listen = -1;
      return;
    }
    socklen_t len = sizeof a;
    ::getsockname(m_listen, reinterpret_cast<sockaddr*>(&a), &len);
    m_port = ntohs(a.sin_port);
    if (options.mode == Mode::source) {
      m_chunk.resize(1 << 16);
      for (std::size_t i = 0; i < m_chunk.size(); ++i)
        m_chunk[i] = reel_pattern_byte(options.source_seed, static_cast<u32>(i));
    }
    m_thread = std::thread([this] { run(); });
  }
  ~LoopbackStreamServer() {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
    for (const Live& l : m_live) ::close(l.fd);
    if (m_listen >= 0) ::close(m_listen);
  }
  LoopbackStreamServer(const LoopbackStreamServer&) = delete;
  LoopbackStreamServer& operator=(const LoopbackStreamServer&) = delete;

  bool ok() const { return m_listen >= 0; }
  // Options::hold: start reading.
  void release() { m_released = true; }
  u16 port() const { return m_port; }
  std::vector<Record> records() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_records;
  }
  std::size_t accepted() const { return m_accepted.load(); }
  std::size_t closed() const { return m_closed.load(); }
  u64 bytes_in() const { return m_bytes_in.load(); }
  // The byte the source sends at `offset` (it repeats a 64 KiB chunk).
  static u8 source_byte(u32 seed, u64 offset) {
    return reel_pattern_byte(seed, static_cast<u32>(offset % (1 << 16)));
  }

 private:
  struct Live {
    int fd = -1;
    std::size_t record = 0;
    std::vector<u8> pending;  // echo: read, not yet written back
    u8 header[4] = {};
    u64 target = 0;  // echo: the stream length from the header (0: none)
    bool close_first = false;
  };

  void run() {
    std::vector<u8> buf(1 << 16);
    std::vector<pollfd> fds;
    while (!m_stop) {
      fds.clear();
      fds.push_back(pollfd{m_listen, POLLIN, 0});
      for (const Live& l : m_live) {
        short ev = 0;
        const Record& r = m_records[l.record];
        const bool holding = m_options.hold && !m_released;
        if (!r.eof && !holding && (m_options.mode != Mode::echo || l.pending.size() < (1u << 20)))
          ev |= POLLIN;
        if (!l.pending.empty() || (m_options.mode == Mode::source && !r.shut)) ev |= POLLOUT;
        fds.push_back(pollfd{l.fd, ev, 0});
      }
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) accept_all();
      std::vector<std::size_t> done;
      for (std::size_t k = 1; k < fds.size(); ++k) {
        if (!fds[k].revents) continue;
        if (!serve(m_live[k - 1], fds[k].revents, buf)) done.push_back(k - 1);
      }
      for (auto it = done.rbegin(); it != done.rend(); ++it) {
        ::close(m_live[*it].fd);
        {
          std::lock_guard<std::mutex> lock(m_mutex);
          m_records[m_live[*it].record].closed = true;
        }
        m_live.erase(m_live.begin() + static_cast<std::ptrdiff_t>(*it));
        ++m_closed;
      }
    }
  }

  void accept_all() {
    for (;;) {
      const int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::lock_guard<std::mutex> lock(m_mutex);
      if (m_records.size() >= m_options.max_connections) {
        ::close(fd);
        continue;
      }
      m_records.emplace_back();
      Live l;
      l.fd = fd;
      l.record = m_records.size() - 1;
      m_live.push_back(std::move(l));
      ++m_accepted;
    }
  }

  // False when the connection is finished (close it).
  bool serve(Live& l, short revents, std::vector<u8>& buf) {
    Record snapshot;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      snapshot = m_records[l.record];
    }
    Record& r = snapshot;
    bool keep = true;
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(l.fd, buf.data(), buf.size(), 0);
      if (n > 0) {
        const auto got = std::span<const u8>(buf.data(), static_cast<std::size_t>(n));
        for (std::size_t i = 0; i < got.size() && r.bytes_in + i < 4; ++i) l.header[r.bytes_in + i] = got[i];
        if (m_options.hash)
          r.hash_in = reel_fnv64_update(r.hash_in, got.data(), static_cast<u32>(got.size()));
        const bool header_done = r.bytes_in < 4 && r.bytes_in + got.size() >= 4;
        r.bytes_in += got.size();
        m_bytes_in += got.size();
        if (header_done && m_options.mode == Mode::echo) {
          const u32 h =
              u32{l.header[0]} | u32{l.header[1]} << 8 | u32{l.header[2]} << 16 | u32{l.header[3]} << 24;
          l.target = h & 0x7fffffffu;
          l.close_first = (h >> 31) != 0;
        }
        if (m_options.mode == Mode::echo) l.pending.insert(l.pending.end(), got.begin(), got.end());
      } else if (n == 0) {
        r.eof = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        r.error = true;
        keep = false;
      }
    }
    if (keep && (revents & POLLOUT) && !r.shut) {
      if (m_options.mode == Mode::source) {
        while (r.bytes_out < m_options.source_length) {
          const std::size_t at = r.bytes_out % m_chunk.size();
          const std::size_t n = std::min<u64>(m_chunk.size() - at, m_options.source_length - r.bytes_out);
          const ssize_t k = ::send(l.fd, m_chunk.data() + at, n, MSG_NOSIGNAL);
          if (k <= 0) {
            if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
              r.error = true;
              keep = false;
            }
            break;
          }
          r.bytes_out += static_cast<u64>(k);
        }
      } else if (!l.pending.empty()) {
        const ssize_t k = ::send(l.fd, l.pending.data(), l.pending.size(), MSG_NOSIGNAL);
        if (k > 0) {
          l.pending.erase(l.pending.begin(), l.pending.begin() + k);
          r.bytes_out += static_cast<u64>(k);
        } else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          r.error = true;
          keep = false;
        }
      }
    }
    if (keep && !r.shut && l.pending.empty()) {
      const bool source_done = m_options.mode == Mode::source && r.bytes_out == m_options.source_length;
      const bool echo_first =
          m_options.mode == Mode::echo && l.close_first && l.target != 0 && r.bytes_out >= l.target;
      if (source_done || echo_first || r.eof) {
        ::shutdown(l.fd, SHUT_WR);
        r.shut = true;
      }
    }
    if (r.shut && r.eof) keep = false;
    std::lock_guard<std::mutex> lock(m_mutex);
    m_records[l.record] = r;
    return keep;
  }

  Options m_options;
  int m_listen = -1;
  u16 m_port = 0;
  std::vector<u8> m_chunk;
  std::atomic<bool> m_stop{false};
  std::atomic<std::size_t> m_accepted{0};
  std::atomic<std::size_t> m_closed{0};
  std::atomic<u64> m_bytes_in{0};
  mutable std::mutex m_mutex;
  std::vector<Record> m_records;
  std::vector<Live> m_live;  // the server thread's own
  std::atomic<bool> m_released{false};
  std::thread m_thread;
};

}  // namespace reel::test
