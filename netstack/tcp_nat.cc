#include "netstack/tcp_nat.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>

#include "core/machine.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"

namespace reel {

namespace {

constexpr u8 kTcpProtocol = 6;
// RFC 7323 2.3: a shift above 14 is taken as 14.
constexpr u8 kMaxWindowShift = 14;
// The smallest MSS we honour: a hostile MSS of 0 would otherwise make
// every segment empty and the sender spin.
constexpr u16 kMinMss = 64;
// The timestamp option's 12 bytes (10 plus two NOPs) come out of the MSS.
constexpr u32 kTimestampOptionSize = 12;
constexpr u64 kClockGranularityNs = 1'000'000;  // our TSval ticks in ms
constexpr u32 kMaxPersistShift = 6;
// RFC 6928's initial window, and a ceiling that stays within what the
// host side can have queued anyway.
constexpr u32 kInitialWindowSegments = 10;
constexpr u32 kMaxCwnd = static_cast<u32>(TcpNat::kToGuestHardLimit);

// Sequence numbers compare modulo 2^32 (RFC 9293 3.4).
bool seq_lt(u32 a, u32 b) { return static_cast<i32>(a - b) < 0; }
bool seq_le(u32 a, u32 b) { return static_cast<i32>(a - b) <= 0; }
bool seq_gt(u32 a, u32 b) { return static_cast<i32>(a - b) > 0; }
bool seq_ge(u32 a, u32 b) { return static_cast<i32>(a - b) >= 0; }
// start <= seq < start + size
bool in_window(u32 seq, u32 start, u32 size) { return seq - start < size; }

}  // namespace

// ---------------------------------------------------------------- ByteQueue

void TcpNat::ByteQueue::grow(std::size_t needed) {
  std::size_t capacity = std::max<std::size_t>({m_capacity, m_last_capacity, 4096});
  while (capacity < needed) capacity *= 2;
  capacity = std::min(capacity, m_bound);
  auto ring = std::make_unique_for_overwrite<u8[]>(capacity);
  const Parts p = parts();
  std::copy(p.first.begin(), p.first.end(), ring.get());
  std::copy(p.second.begin(), p.second.end(), ring.get() + p.first.size());
  m_ring = std::move(ring);
  m_capacity = capacity;
  m_head = 0;
}

void TcpNat::ByteQueue::append(std::span<const u8> bytes) {
  if (bytes.empty()) return;
  assert(m_size + bytes.size() <= m_bound);
  if (m_size + bytes.size() > m_capacity) grow(m_size + bytes.size());
  std::size_t tail = m_head + m_size;
  if (tail >= m_capacity) tail -= m_capacity;
  const std::size_t first = std::min(bytes.size(), m_capacity - tail);
  std::memcpy(m_ring.get() + tail, bytes.data(), first);
  if (first < bytes.size()) std::memcpy(m_ring.get(), bytes.data() + first, bytes.size() - first);
  m_size += bytes.size();
}

void TcpNat::ByteQueue::consume(std::size_t count) {
  assert(count <= m_size);
  m_size -= count;
  m_head += count;
  if (m_head >= m_capacity) m_head -= m_capacity;
  if (m_size == 0) {
    // Give the memory back: idle connections should cost no buffers. The
    // next fill allocates the capacity this one reached at once, so that a
    // stream draining and refilling does not grow (and copy) step by step.
    m_last_capacity = m_capacity;
    m_ring.reset();
    m_capacity = 0;
    m_head = 0;
  }
}

TcpNat::ByteQueue::Parts TcpNat::ByteQueue::parts(std::size_t offset, std::size_t length) const {
  assert(offset + length <= m_size);
  if (length == 0) return {};
  std::size_t start = m_head + offset;
  if (start >= m_capacity) start -= m_capacity;
  const std::size_t first = std::min(length, m_capacity - start);
  Parts p;
  p.first = std::span<const u8>(m_ring.get() + start, first);
  if (first < length) p.second = std::span<const u8>(m_ring.get(), length - first);
  return p;
}

std::span<const u8> TcpNat::ByteQueue::contiguous(std::size_t offset, std::size_t length,
                                                  std::span<u8> scratch) const {
  const Parts p = parts(offset, length);
  if (p.second.empty()) return p.first;
  assert(scratch.size() >= length);
  std::memcpy(scratch.data(), p.first.data(), p.first.size());
  std::memcpy(scratch.data() + p.first.size(), p.second.data(), p.second.size());
  return scratch.first(length);
}

// ---------------------------------------------------------------- basics

TcpNat::TcpNat(GatewayLink& link) : m_link(link) {}

const char* TcpNat::state_name(State state) {
  switch (state) {
    case State::connecting:
      return "CONNECTING";
    case State::syn_sent:
      return "SYN_SENT";
    case State::syn_received:
      return "SYN_RCVD";
    case State::established:
      return "ESTABLISHED";
    case State::close_wait:
      return "CLOSE_WAIT";
    case State::fin_wait_1:
      return "FIN_WAIT_1";
    case State::fin_wait_2:
      return "FIN_WAIT_2";
    case State::closing:
      return "CLOSING";
    case State::last_ack:
      return "LAST_ACK";
    case State::time_wait:
      return "TIME_WAIT";
  }
  return "?";
}

bool TcpNat::is_synchronized(State state) const {
  return state != State::connecting && state != State::syn_sent && state != State::syn_received;
}

u32 TcpNat::timestamp_now() const { return static_cast<u32>(m_link.now_ns() / kClockGranularityNs); }

u32 TcpNat::payload_mss(const Connection& c) const {
  return c.send_mss - (c.timestamps ? kTimestampOptionSize : 0);
}

u32 TcpNat::receive_window(const Connection& c) const {
  // Our window scale is 0 (kToHostLimit < 64 KiB), so the free space is
  // the window, exactly: we never advertise room we do not have.
  return static_cast<u32>(kToHostLimit - c.to_host.size());
}

bool TcpNat::fin_queued_at(const Connection& c, u32& fin_sequence) const {
  // Only asked in synchronized states, where the SYN is behind snd_una.
  if (!c.host_eof) return false;
  fin_sequence = c.snd_una + static_cast<u32>(c.to_guest.size());
  return true;
}

std::optional<TcpNat::ConnectionInfo> TcpNat::connection(u32 guest_ip, u16 guest_port, u32 remote_ip,
                                                         u16 remote_port) const {
  const auto it = m_connections.find(Key{guest_ip, guest_port, remote_ip, remote_port});
  if (it == m_connections.end()) return std::nullopt;
  const Connection& c = it->second;
  ConnectionInfo info;
  info.state = c.state;
  info.forwarded = c.forwarded;
  info.has_socket = c.has_socket;
  info.socket = c.socket;
  info.snd_una = c.snd_una;
  info.snd_nxt = c.snd_nxt;
  info.snd_wnd = c.snd_wnd;
  info.rcv_nxt = c.rcv_nxt;
  info.rcv_wnd = receive_window(c);
  info.rto_ns = c.rto_ns;
  info.retries = c.retries;
  info.to_host_bytes = c.to_host.size();
  info.to_guest_bytes = c.to_guest.size();
  info.out_of_order_segments = c.out_of_order.size();
  info.host_paused = c.host_paused;
  return info;
}

std::vector<std::string> TcpNat::describe_connections() const {
  std::vector<std::string> lines;
  for (const auto& [key, c] : m_connections) {
    // Built by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + string.
    std::string line = "TCP[";
    line.append(state_name(c.state)).append("]");
    if (c.forwarded) line.append(" fwd");
    line.append(" socket ").append(c.has_socket ? std::to_string(c.socket) : std::string("-"));
    line.append(" ").append(format_socket_address({key.guest_ip, key.guest_port}));
    line.append(" <-> ").append(format_socket_address({key.remote_ip, key.remote_port}));
    line.append(" recvq ").append(std::to_string(c.to_host.size()));
    line.append(" sendq ").append(std::to_string(c.to_guest.size()));
    lines.push_back(std::move(line));
  }
  return lines;
}

// ---------------------------------------------------------------- sockets

void TcpNat::rebuild_socket_index() {
  m_by_socket.clear();
  for (const auto& [key, c] : m_connections)
    if (c.has_socket) m_by_socket[c.socket] = key;
}

void TcpNat::bind_socket(SocketId socket) {
  m_link.machine().set_socket_handler(socket,
                                      [this, socket](const SocketEvent& e) { on_socket_event(socket, e); });
}

void TcpNat::rebind_sockets() {
  rebuild_socket_index();
  for (const auto& [socket, key] : m_by_socket) bind_socket(socket);
}

void TcpNat::close_socket(Connection& c) {
  if (!c.has_socket) return;
  m_by_socket.erase(c.socket);
  m_link.machine().clear_socket_handler(c.socket);
  m_link.machine().host().socket_close(c.socket);
  c.has_socket = false;
  c.host_paused = false;
}

void TcpNat::close_all() {
  for (auto& [key, c] : m_connections) {
    m_counters.to_host_discarded += c.to_host.size();
    close_socket(c);
  }
  m_connections.clear();
  m_by_socket.clear();
}

void TcpNat::forget(Iterator it) {
  Connection& c = it->second;
  if (c.has_socket) m_counters.to_host_discarded += c.to_host.size();
  close_socket(c);
  m_connections.erase(it);
}

bool TcpNat::recycle_time_wait() {
  // The oldest TIME-WAIT record (earliest deadline; ties by key) makes room.
  auto victim = m_connections.end();
  for (auto it = m_connections.begin(); it != m_connections.end(); ++it) {
    if (it->second.state != State::time_wait) continue;
    if (victim == m_connections.end() || it->second.time_wait_deadline < victim->second.time_wait_deadline)
      victim = it;
  }
  if (victim == m_connections.end()) return false;
  ++m_counters.time_wait_recycled;
  forget(victim);
  return true;
}

void TcpNat::on_socket_event(SocketId socket, const SocketEvent& event) {
  const auto s = m_by_socket.find(socket);
  if (s == m_by_socket.end()) {
    ++m_counters.ignored_host_events;
    return;
  }
  const auto it = m_connections.find(s->second);
  assert(it != m_connections.end());
  Connection& c = it->second;
  switch (event.kind) {
    case SocketEvent::Kind::connected:
      if (c.state == State::connecting)
        host_connected(it);
      else
        ++m_counters.ignored_host_events;
      return;
    case SocketEvent::Kind::connect_failed:
      if (c.state == State::connecting)
        ++m_counters.connect_failed;
      else
        ++m_counters.host_errors;
      reset_and_forget(it);
      return;
    case SocketEvent::Kind::data:
      host_data(it, event.bytes);
      return;
    case SocketEvent::Kind::writable:
      flush_to_host(it);
      // flush_to_host may have closed the socket, never the connection.
      maybe_window_update(it);
      return;
    case SocketEvent::Kind::eof:
      if (c.host_eof) {
        ++m_counters.ignored_host_events;
        return;
      }
      c.host_eof = true;
      output(it);
      finish_host_side(it);
      return;
    case SocketEvent::Kind::error:
      ++m_counters.host_errors;
      reset_and_forget(it);
      return;
    case SocketEvent::Kind::accepted:
    case SocketEvent::Kind::datagram:
      ++m_counters.ignored_host_events;
      return;
  }
}

void TcpNat::host_connected(Iterator it) {
  Connection& c = it->second;
  c.iss = static_cast<u32>(m_link.machine().prng().next());
  c.snd_una = c.iss;
  c.snd_nxt = c.iss + 1;
  c.snd_max = c.snd_nxt;
  c.state = State::syn_received;
  c.rtt_timing = true;
  c.rtt_sequence = c.iss;
  c.rtt_start_ns = m_link.now_ns();
  send_syn_ack(it->first, c);
  start_rtx(c);
}

void TcpNat::host_data(Iterator it, std::span<const u8> bytes) {
  Connection& c = it->second;
  if (bytes.empty()) return;
  if (c.host_eof) {
    ++m_counters.ignored_host_events;
    return;
  }
  if (c.to_guest.size() + bytes.size() > kToGuestHardLimit) {
    ++m_counters.host_overflow_resets;
    reset_and_forget(it);
    return;
  }
  c.to_guest.append(bytes);
  if (!c.host_paused && c.has_socket && c.to_guest.size() >= kToGuestLimit) {
    m_link.machine().host().socket_pause(c.socket, true);
    c.host_paused = true;
  }
  output(it);
}

void TcpNat::flush_to_host(Iterator it) {
  Connection& c = it->second;
  c.flush_deadline = 0;
  if (c.has_socket && !c.host_shutdown && !c.to_host.empty()) {
    // HostIO has no gather send: the second part goes only when the host
    // took all of the first, so the stream stays in order.
    const ByteQueue::Parts parts = c.to_host.parts();
    HostIO& host = m_link.machine().host();
    std::size_t taken = std::min(host.socket_send(c.socket, parts.first), parts.first.size());
    if (taken == parts.first.size() && !parts.second.empty())
      taken += std::min(host.socket_send(c.socket, parts.second), parts.second.size());
    const std::size_t kept = std::min(taken, c.to_host.size());
    c.to_host.consume(kept);
    m_counters.bytes_to_host += kept;
    // When the host took less, a `writable` event brings us back.
  }
  finish_host_side(it);
}

void TcpNat::maybe_window_update(Iterator it) {
  Connection& c = it->second;
  if (c.guest_fin || !is_synchronized(c.state) || c.state == State::time_wait) return;
  // RFC 9293 3.8.6.2.2: announce a reopened window once it grew by a
  // segment or half the buffer, so a guest stalled on a closed window
  // resumes without waiting for its persist timer.
  const u32 edge = c.rcv_nxt + receive_window(c);
  const u32 growth = seq_gt(edge, c.rcv_adv) ? edge - c.rcv_adv : 0;
  const u32 threshold = std::min<u32>(static_cast<u32>(kToHostLimit / 2), c.send_mss);
  const u32 advertised = seq_gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv - c.rcv_nxt : 0;
  if (growth >= threshold || (advertised == 0 && growth > 0)) send_ack(it->first, c);
}

void TcpNat::finish_host_side(Iterator it) {
  Connection& c = it->second;
  if (!c.has_socket) return;
  if (c.guest_fin && c.to_host.empty() && !c.host_shutdown) {
    m_link.machine().host().socket_shutdown(c.socket);
    c.host_shutdown = true;
  }
  // Both directions are finished on the host side: nothing more can cross.
  if (c.host_shutdown && c.host_eof) close_socket(c);
}

// ---------------------------------------------------------------- output

void TcpNat::send_segment(const Key& key, Connection& c, const Outgoing& out) {
  wire::TcpFields f;
  f.source_port = key.remote_port;
  f.destination_port = key.guest_port;
  f.sequence = out.sequence;
  f.acknowledgment = out.acknowledgment;
  f.flags = out.flags;
  const u32 window = receive_window(c);
  f.window = static_cast<u16>(std::min<u32>(window, 0xffff));
  if ((out.flags & wire::kTcpSyn) != 0) {
    if (c.state == State::syn_sent) {
      // A forward's SYN offers everything we do; the guest's SYN-ACK decides.
      f.options.mss = kMss;
      f.options.window_scale = 0;
      f.options.timestamps = wire::TcpTimestamps{timestamp_now(), 0};
    } else {
      f.options.mss = c.send_mss;
      if (c.window_scaling) f.options.window_scale = 0;
    }
  }
  if (c.timestamps) f.options.timestamps = wire::TcpTimestamps{timestamp_now(), c.ts_recent};
  // Built behind room for the gateway's headers, so the frame is made
  // around the segment rather than by copying it (GatewayLink).
  std::array<u8, GatewayLink::kFrameHeadroom + wire::kTcpMinHeaderSize + wire::kTcpMaxOptionsSize + kMss>
      frame;  // the builders write every byte that is sent
  const auto size = wire::build_tcp(std::span(frame).subspan(GatewayLink::kFrameHeadroom), key.remote_ip,
                                    key.guest_ip, f, out.payload);
  assert(size.has_value());
  if ((out.flags & wire::kTcpAck) != 0) {
    c.last_ack_sent = out.acknowledgment;
    const u32 edge = c.rcv_nxt + window;
    if (seq_gt(edge, c.rcv_adv)) c.rcv_adv = edge;
  }
  to_guest(key, frame, *size);
}

void TcpNat::to_guest(const Key& key, std::span<u8> frame, std::size_t size) {
  GatewayDatagram datagram;
  datagram.source = key.remote_ip;
  datagram.destination = key.guest_ip;
  datagram.protocol = kTcpProtocol;
  if (m_link.send_to_guest_framed(datagram, frame, size))
    ++m_counters.segments_out;
  else
    ++m_counters.segments_lost;
}

void TcpNat::send_ack(const Key& key, Connection& c) {
  send_segment(key, c, Outgoing{c.snd_nxt, c.rcv_nxt, wire::kTcpAck, {}});
}

void TcpNat::send_syn_ack(const Key& key, Connection& c) {
  send_segment(key, c, Outgoing{c.iss, c.rcv_nxt, wire::kTcpSyn | wire::kTcpAck, {}});
}

void TcpNat::send_syn(const Key& key, Connection& c) {
  send_segment(key, c, Outgoing{c.iss, 0, wire::kTcpSyn, {}});
}

void TcpNat::send_reset(const Key& key, u32 sequence, u32 acknowledgment, u8 flags) {
  wire::TcpFields f;
  f.source_port = key.remote_port;
  f.destination_port = key.guest_port;
  f.sequence = sequence;
  f.acknowledgment = acknowledgment;
  f.flags = flags;
  std::array<u8, GatewayLink::kFrameHeadroom + wire::kTcpMinHeaderSize> frame{};
  const auto size = wire::build_tcp(std::span(frame).subspan(GatewayLink::kFrameHeadroom), key.remote_ip,
                                    key.guest_ip, f, {});
  assert(size.has_value());
  to_guest(key, frame, *size);
}

void TcpNat::reset_and_forget(Iterator it) {
  const Key key = it->first;
  Connection& c = it->second;
  switch (c.state) {
    case State::connecting:
      // The guest is in SYN-SENT: a RST acknowledging its SYN (RFC 9293
      // 3.10.7.3), as libslirp answers a refused connect.
      send_reset(key, 0, c.rcv_nxt, wire::kTcpRst | wire::kTcpAck);
      break;
    case State::syn_sent:
      // The guest, if it got our SYN, waits in SYN-RECEIVED for iss + 1.
      send_reset(key, c.snd_max, 0, wire::kTcpRst);
      break;
    case State::time_wait:
      break;
    default:
      // snd_max is where a guest that received everything expects us,
      // the only sequence an RFC 5961 receiver accepts without a challenge.
      send_reset(key, c.snd_max, c.rcv_nxt, wire::kTcpRst | wire::kTcpAck);
      break;
  }
  forget(it);
}

int TcpNat::output(Iterator it) {
  const Key& key = it->first;
  Connection& c = it->second;
  switch (c.state) {
    case State::established:
    case State::close_wait:
    case State::fin_wait_1:
    case State::closing:
    case State::last_ack:
      break;
    default:
      return 0;
  }
  const u32 mss = payload_mss(c);
  int sent = 0;
  for (;;) {
    const u32 offset = c.snd_nxt - c.snd_una;
    if (offset > c.to_guest.size()) break;  // only the FIN is beyond, and it is out
    const std::size_t unsent = c.to_guest.size() - offset;
    const u32 window = std::min(c.snd_wnd, c.cwnd);
    const u32 in_flight = c.snd_nxt - c.snd_una;
    const u32 usable = window > in_flight ? window - in_flight : 0;
    const u32 length = static_cast<u32>(std::min<std::size_t>({unsent, usable, mss}));
    u32 fin_sequence = 0;
    const bool fin = fin_queued_at(c, fin_sequence) && c.snd_nxt + length == fin_sequence;
    if (length == 0 && !fin) break;
    // Sender-side silly window avoidance (RFC 9293 3.8.6.2.1): a runt
    // waits while something is in flight whose ACK will open the window.
    if (length < mss && length < unsent && in_flight > 0) break;
    const bool burst_end = length == unsent || length == usable;
    u8 flags = wire::kTcpAck;
    if (length > 0 && burst_end) flags |= wire::kTcpPsh;
    if (fin) flags |= wire::kTcpFin;
    const u32 sequence = c.snd_nxt;
    std::array<u8, kMss> scratch;  // used only when the segment wraps the ring
    send_segment(key, c,
                 Outgoing{sequence, c.rcv_nxt, flags, c.to_guest.contiguous(offset, length, scratch)});
    const u32 end = sequence + length + (fin ? 1 : 0);
    if (seq_ge(sequence, c.snd_max)) {
      m_counters.bytes_to_guest += length;
      if (!c.rtt_timing) {
        c.rtt_timing = true;
        c.rtt_sequence = sequence;
        c.rtt_start_ns = m_link.now_ns();
      }
    } else {
      ++m_counters.retransmits;
      if (seq_gt(end, c.snd_max)) m_counters.bytes_to_guest += end - c.snd_max - (fin ? 1 : 0);
    }
    c.snd_nxt = end;
    if (seq_gt(c.snd_nxt, c.snd_max)) c.snd_max = c.snd_nxt;
    if (fin) {
      if (c.state == State::established)
        c.state = State::fin_wait_1;
      else if (c.state == State::close_wait)
        c.state = State::last_ack;
    }
    if (c.rtx_deadline == 0) start_rtx(c);
    c.persist_deadline = 0;
    ++sent;
    if (fin) break;
  }
  // A closed window with data waiting and nothing in flight whose ACK
  // could reopen it: probe (RFC 9293 3.8.6.1).
  if (c.snd_wnd == 0 && !c.to_guest.empty() && c.snd_una == c.snd_max && c.persist_deadline == 0)
    start_persist(c);
  // Whatever is in flight is covered by one of the two timers.
  if (c.snd_una != c.snd_max && c.rtx_deadline == 0 && c.persist_deadline == 0) start_rtx(c);
  return sent;
}

void TcpNat::retransmit_first(const Key& key, Connection& c) {
  ++m_counters.retransmits;
  c.rtt_timing = false;  // Karn: never time a retransmitted segment
  if (c.state == State::syn_received) {
    send_syn_ack(key, c);
    return;
  }
  if (c.state == State::syn_sent) {
    send_syn(key, c);
    return;
  }
  const u32 length = static_cast<u32>(std::min<std::size_t>(c.to_guest.size(), payload_mss(c)));
  u32 fin_sequence = 0;
  const bool fin =
      fin_queued_at(c, fin_sequence) && c.snd_una + length == fin_sequence && seq_gt(c.snd_max, fin_sequence);
  u8 flags = wire::kTcpAck;
  if (length > 0) flags |= wire::kTcpPsh;
  if (fin) flags |= wire::kTcpFin;
  std::array<u8, kMss> scratch;  // used only when the segment wraps the ring
  send_segment(key, c, Outgoing{c.snd_una, c.rcv_nxt, flags, c.to_guest.contiguous(0, length, scratch)});
}

// ---------------------------------------------------------------- timers

void TcpNat::arm(u64& deadline, u64 when) {
  deadline = when;
  if (m_armed_ns == 0 || when < m_armed_ns) {
    m_armed_ns = when;
    m_link.wake_at(when);
  }
}

void TcpNat::start_rtx(Connection& c) { arm(c.rtx_deadline, m_link.now_ns() + c.rto_ns); }

void TcpNat::start_persist(Connection& c) {
  c.rtx_deadline = 0;
  const u64 interval = std::min(std::max(c.rto_ns, kMinRtoNs) << c.persist_shift, kMaxRtoNs);
  arm(c.persist_deadline, m_link.now_ns() + interval);
}

void TcpNat::update_rtt(Connection& c, u64 sample_ns) {
  // RFC 6298 2.2 and 2.3, alpha 1/8, beta 1/4.
  if (c.srtt_ns == 0 && c.rttvar_ns == 0) {
    c.srtt_ns = sample_ns;
    c.rttvar_ns = sample_ns / 2;
  } else {
    const u64 delta = c.srtt_ns > sample_ns ? c.srtt_ns - sample_ns : sample_ns - c.srtt_ns;
    c.rttvar_ns = (3 * c.rttvar_ns + delta) / 4;
    c.srtt_ns = (7 * c.srtt_ns + sample_ns) / 8;
  }
  const u64 rto = c.srtt_ns + std::max(kClockGranularityNs, 4 * c.rttvar_ns);
  c.rto_ns = std::clamp(rto, kMinRtoNs, kMaxRtoNs);
}

void TcpNat::on_timer(u64 now_ns) {
  if (m_armed_ns != 0 && m_armed_ns <= now_ns) m_armed_ns = 0;
  auto due = [now_ns](u64 deadline) { return deadline != 0 && deadline <= now_ns; };
  std::vector<Key> keys;
  for (const auto& [key, c] : m_connections)
    if (due(c.rtx_deadline) || due(c.persist_deadline) || due(c.time_wait_deadline) || due(c.flush_deadline))
      keys.push_back(key);
  for (const Key& key : keys) {
    auto it = m_connections.find(key);
    if (it == m_connections.end()) continue;
    if (due(it->second.time_wait_deadline)) {
      ++m_counters.time_wait_expired;
      forget(it);
      continue;
    }
    if (due(it->second.flush_deadline)) {
      flush_to_host(it);
      maybe_window_update(it);
      it = m_connections.find(key);
      if (it == m_connections.end()) continue;
    }
    if (due(it->second.rtx_deadline)) {
      on_retransmit_timer(it, now_ns);
      it = m_connections.find(key);
      if (it == m_connections.end()) continue;
    }
    if (due(it->second.persist_deadline)) on_persist_timer(it, now_ns);
  }
  // Ask again for the earliest deadline left: the gateway's timer may
  // remember only one.
  u64 next = 0;
  for (const auto& [key, c] : m_connections)
    for (u64 d : {c.rtx_deadline, c.persist_deadline, c.time_wait_deadline, c.flush_deadline})
      if (d != 0 && (next == 0 || d < next)) next = d;
  if (next != 0 && (m_armed_ns == 0 || next < m_armed_ns)) {
    m_armed_ns = next;
    m_link.wake_at(next);
  }
}

void TcpNat::on_retransmit_timer(Iterator it, u64 now) {
  const Key key = it->first;
  Connection& c = it->second;
  c.rtx_deadline = 0;
  if (c.snd_una == c.snd_max) return;  // everything was acknowledged meanwhile
  ++m_counters.rto_expirations;
  const bool handshake = c.state == State::syn_sent || c.state == State::syn_received;
  if (!handshake && c.snd_wnd == 0 && c.to_guest.size() > 0) {
    // The guest closed its window under data in flight: that is the
    // persist timer's business, not a loss.
    c.snd_nxt = c.snd_una;
    start_persist(c);
    return;
  }
  const u32 limit = handshake ? kMaxSynRetries : kMaxRetries;
  if (++c.retries > limit) {
    if (c.state == State::syn_sent)
      ++m_counters.forward_syn_timeouts;
    else
      ++m_counters.give_ups;
    reset_and_forget(it);
    return;
  }
  c.rto_ns = std::min(c.rto_ns * 2, kMaxRtoNs);
  c.dup_acks = 0;
  c.rtt_timing = false;
  if (handshake) {
    retransmit_first(key, c);
  } else {
    // RFC 5681 3.1: after a timeout, slow start from one segment.
    const u32 flight = c.snd_max - c.snd_una;
    c.ssthresh = std::max(flight / 2, 2 * payload_mss(c));
    c.cwnd = payload_mss(c);
    c.snd_nxt = c.snd_una;
    output(it);
  }
  start_rtx(c);
  (void)now;
}

void TcpNat::on_persist_timer(Iterator it, u64 now) {
  const Key key = it->first;
  Connection& c = it->second;
  c.persist_deadline = 0;
  if (c.snd_wnd != 0 || c.to_guest.empty()) {
    output(it);
    return;
  }
  // One byte at snd_una: a guest whose window reopened takes and ACKs it;
  // one still closed drops it and ACKs with its window.
  ++m_counters.persist_probes;
  std::array<u8, kMss> scratch;  // used only when the segment wraps the ring
  send_segment(key, c, Outgoing{c.snd_una, c.rcv_nxt, wire::kTcpAck, c.to_guest.contiguous(0, 1, scratch)});
  // The probe byte is not counted as sent: a guest whose window is still
  // closed drops it, and once the window reopens output must start at
  // snd_una, not one byte past a hole (a guest without an out-of-order
  // queue would drop the whole window). snd_max covers it, so an ACK of
  // the probe byte is acceptable and moves snd_nxt along with snd_una.
  if (seq_lt(c.snd_max, c.snd_una + 1)) c.snd_max = c.snd_una + 1;
  if (c.persist_shift < kMaxPersistShift) ++c.persist_shift;
  start_persist(c);
  (void)now;
}

// ---------------------------------------------------------------- guest input

void TcpNat::take_options(Connection& c, const wire::TcpSegment& tcp) {
  const wire::TcpOptions& o = tcp.options();
  const u16 mss = o.mss ? *o.mss : kDefaultGuestMss;
  c.send_mss = std::clamp<u16>(mss, kMinMss, kMss);
  c.window_scaling = o.window_scale.has_value();
  c.send_shift = c.window_scaling ? std::min(*o.window_scale, kMaxWindowShift) : 0;
  c.timestamps = o.timestamps.has_value();
  if (c.timestamps) c.ts_recent = o.timestamps->value;
  c.cwnd = std::max(kInitialWindowSegments * payload_mss(c), 1u);
  c.ssthresh = kMaxCwnd;
}

void TcpNat::guest_segment(const wire::Ipv4Packet& ip) {
  const auto parsed = wire::TcpSegment::parse(ip);
  if (!parsed) {
    if (parsed.error == wire::TcpError::bad_checksum)
      ++m_counters.dropped_bad_checksum;
    else
      ++m_counters.dropped_malformed;
    return;
  }
  const wire::TcpSegment& tcp = *parsed;
  ++m_counters.segments_in;
  const Key key{ip.source(), tcp.source_port(), ip.destination(), tcp.destination_port()};
  auto it = m_connections.find(key);
  const bool rst = tcp.has(wire::kTcpRst);
  const bool pure_syn = tcp.has(wire::kTcpSyn) && !tcp.has(wire::kTcpAck) && !rst;
  if (it != m_connections.end() && it->second.state == State::time_wait && pure_syn &&
      seq_gt(tcp.sequence(), it->second.rcv_nxt)) {
    // A new incarnation of the same 4-tuple (RFC 9293 3.10.7.4's
    // TIME-WAIT allowance): the old one has nothing left to say.
    ++m_counters.time_wait_recycled;
    forget(it);
    it = m_connections.end();
  }
  if (it == m_connections.end()) {
    if (rst) {
      ++m_counters.ignored_unknown_rst;
      return;
    }
    if (pure_syn) {
      guest_syn(key, tcp);
      return;
    }
    // RFC 9293 3.10.7.1: the reset takes its sequence from the ACK, or
    // acknowledges the segment when it has none.
    ++m_counters.rst_for_unknown;
    if (tcp.has(wire::kTcpAck))
      send_reset(key, tcp.acknowledgment(), 0, wire::kTcpRst);
    else
      send_reset(key, 0, tcp.sequence() + tcp.sequence_length(), wire::kTcpRst | wire::kTcpAck);
    return;
  }
  switch (it->second.state) {
    case State::connecting:
      if (rst) {
        // The guest gave up on its connect (RFC 9293: RST in SYN-SENT's
        // peer is acceptable when it carries the SYN's sequence + 1).
        if (tcp.sequence() == it->second.rcv_nxt) {
          ++m_counters.resets_from_guest;
          forget(it);
        } else {
          ++m_counters.ignored_rst;
        }
      } else if (pure_syn) {
        ++m_counters.syn_while_connecting;
      } else {
        ++m_counters.dropped_not_acceptable;
      }
      return;
    case State::syn_sent:
      syn_sent_input(it, tcp);
      return;
    default:
      synchronized_input(it, tcp);
      return;
  }
}

void TcpNat::guest_syn(const Key& key, const wire::TcpSegment& tcp) {
  // Whatever the SYN carries besides (data, FIN) is not acknowledged; the
  // guest sends it again once the connection is up.
  const u32 ack = tcp.sequence() + 1;
  if (!tcp.payload().empty() || tcp.has(wire::kTcpFin)) ++m_counters.syn_data_ignored;
  const auto target = m_link.host_target(key.remote_ip, key.remote_port);
  if (!target) {
    ++m_counters.refused_by_policy;
    send_reset(key, 0, ack, wire::kTcpRst | wire::kTcpAck);
    return;
  }
  if (m_connections.size() >= kMaxConnections && !recycle_time_wait()) {
    ++m_counters.refused_limit;
    send_reset(key, 0, ack, wire::kTcpRst | wire::kTcpAck);
    return;
  }
  SocketSpec spec;
  spec.kind = SocketSpec::Kind::tcp_connect;
  spec.host = target->host;
  spec.port = target->port;
  const SocketOpenResult opened = m_link.machine().host().socket_open(spec);
  if (!opened.ok) {
    ++m_counters.socket_open_failed;
    send_reset(key, 0, ack, wire::kTcpRst | wire::kTcpAck);
    return;
  }
  Connection c;
  c.state = State::connecting;
  c.socket = opened.id;
  c.has_socket = true;
  c.irs = tcp.sequence();
  c.rcv_nxt = ack;
  c.rcv_adv = ack;
  take_options(c, tcp);
  c.snd_wnd = tcp.window();  // never scaled in a SYN (RFC 7323 2.2)
  c.snd_wl1 = tcp.sequence();
  m_connections.emplace(key, std::move(c));
  m_by_socket[opened.id] = key;
  bind_socket(opened.id);
  ++m_counters.connections_opened;
}

void TcpNat::forward_accepted(SocketId accepted, const SocketAddress& peer, u32 guest_ip, u16 guest_port) {
  const Key key{guest_ip, guest_port, m_link.guest_visible_source(peer.ip), peer.port};
  auto existing = m_connections.find(key);
  if (existing != m_connections.end() && existing->second.state == State::time_wait) {
    ++m_counters.time_wait_recycled;
    forget(existing);
    existing = m_connections.end();
  }
  if (existing != m_connections.end() || (m_connections.size() >= kMaxConnections && !recycle_time_wait())) {
    ++m_counters.forwards_refused;
    m_link.machine().host().socket_close(accepted);
    return;
  }
  Connection c;
  c.forwarded = true;
  c.state = State::syn_sent;
  c.socket = accepted;
  c.has_socket = true;
  c.iss = static_cast<u32>(m_link.machine().prng().next());
  c.snd_una = c.iss;
  c.snd_nxt = c.iss + 1;
  c.snd_max = c.snd_nxt;
  c.rtt_timing = true;
  c.rtt_sequence = c.iss;
  c.rtt_start_ns = m_link.now_ns();
  const auto it = m_connections.emplace(key, std::move(c)).first;
  m_by_socket[accepted] = key;
  bind_socket(accepted);
  ++m_counters.forwards_opened;
  send_syn(key, it->second);
  start_rtx(it->second);
}

void TcpNat::syn_sent_input(Iterator it, const wire::TcpSegment& tcp) {
  // RFC 9293 3.10.7.3, our SYN being out.
  const Key key = it->first;
  Connection& c = it->second;
  const bool has_ack = tcp.has(wire::kTcpAck);
  const bool ack_ok =
      has_ack && seq_gt(tcp.acknowledgment(), c.iss) && seq_le(tcp.acknowledgment(), c.snd_max);
  if (has_ack && !ack_ok) {
    if (!tcp.has(wire::kTcpRst)) {
      ++m_counters.dropped_not_acceptable;
      send_reset(key, tcp.acknowledgment(), 0, wire::kTcpRst);
    } else {
      ++m_counters.ignored_rst;
    }
    return;
  }
  if (tcp.has(wire::kTcpRst)) {
    if (ack_ok) {
      ++m_counters.forwards_reset;
      forget(it);
    } else {
      ++m_counters.ignored_rst;
    }
    return;
  }
  if (!tcp.has(wire::kTcpSyn)) {
    ++m_counters.dropped_not_acceptable;
    return;
  }
  c.irs = tcp.sequence();
  c.rcv_nxt = c.irs + 1;
  c.rcv_adv = c.rcv_nxt;
  take_options(c, tcp);
  c.snd_wnd = tcp.window();
  c.snd_wl1 = tcp.sequence();
  c.snd_wl2 = tcp.acknowledgment();
  if (!ack_ok) {
    // Simultaneous open: answer with SYN-ACK and wait for the ACK.
    c.state = State::syn_received;
    send_syn_ack(key, c);
    start_rtx(c);
    return;
  }
  c.snd_una = tcp.acknowledgment();
  c.state = State::established;
  ++m_counters.connections_established;
  if (c.rtt_timing) update_rtt(c, m_link.now_ns() - c.rtt_start_ns);
  c.rtt_timing = false;
  c.retries = 0;
  c.rtx_deadline = 0;
  if (output(it) == 0) send_ack(key, c);
  finish_host_side(it);
}

void TcpNat::synchronized_input(Iterator it, const wire::TcpSegment& tcp) {
  const Key key = it->first;
  Connection& c = it->second;
  const u32 seq = tcp.sequence();
  const u32 seg_len = tcp.sequence_length();
  const bool rst = tcp.has(wire::kTcpRst);
  const bool syn = tcp.has(wire::kTcpSyn);

  if (c.state == State::syn_received && syn && !tcp.has(wire::kTcpAck) && !rst && seq == c.irs) {
    // The guest did not get our SYN-ACK: send it again right away.
    retransmit_first(key, c);
    return;
  }

  // 0. PAWS (RFC 7323 5.3): a timestamp older than the one last taken in
  // sequence marks an old duplicate from a previous wrap of the sequence
  // space. RSTs are exempt (they need not carry timestamps).
  if (c.timestamps && !rst && tcp.options().timestamps &&
      seq_lt(tcp.options().timestamps->value, c.ts_recent)) {
    ++m_counters.dropped_paws;
    send_ack(key, c);
    return;
  }

  // 1. Is the segment inside the receive window (RFC 9293 3.10.7.4)?
  const u32 window = seq_gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv - c.rcv_nxt : 0;
  bool acceptable = false;
  if (seg_len == 0)
    acceptable = window == 0 ? seq == c.rcv_nxt : in_window(seq, c.rcv_nxt, window);
  else
    acceptable =
        window != 0 && (in_window(seq, c.rcv_nxt, window) || in_window(seq + seg_len - 1, c.rcv_nxt, window));
  if (!acceptable) {
    if (rst) {
      ++m_counters.ignored_rst;
      return;
    }
    if (seg_len > 0 && seq_le(seq + seg_len, c.rcv_nxt))
      ++m_counters.duplicate_segments;
    else
      ++m_counters.dropped_not_acceptable;
    if (c.state == State::time_wait && tcp.has(wire::kTcpFin)) {
      // A retransmitted FIN: our ACK was lost; TIME-WAIT starts over.
      arm(c.time_wait_deadline, m_link.now_ns() + kTimeWaitNs);
    }
    send_ack(key, c);
    // A closed window refuses every byte but must still take ACKs and
    // window updates, or the two sides could deadlock.
    if (window == 0 && tcp.has(wire::kTcpAck) && !syn) {
      if (process_ack(it, tcp) == Flow::gone) return;
      output(it);
    }
    return;
  }

  // 2. RST: exactly at rcv_nxt resets; elsewhere in the window it earns a
  // challenge ACK (RFC 5961 3.2), so a blind attacker cannot guess it.
  if (rst) {
    if (seq == c.rcv_nxt) {
      ++m_counters.resets_from_guest;
      forget(it);
    } else {
      ++m_counters.challenge_acks;
      send_ack(key, c);
    }
    return;
  }
  // 3. SYN on a synchronized connection: challenge ACK (RFC 5961 4.2).
  if (syn) {
    ++m_counters.challenge_acks;
    send_ack(key, c);
    return;
  }
  if (!tcp.has(wire::kTcpAck)) {
    ++m_counters.dropped_no_ack;
    return;
  }
  // RFC 7323 4.3: remember the timestamp to echo.
  if (c.timestamps && tcp.options().timestamps && seq_le(seq, c.last_ack_sent) &&
      seq_ge(tcp.options().timestamps->value, c.ts_recent))
    c.ts_recent = tcp.options().timestamps->value;

  // 4. ACK.
  switch (process_ack(it, tcp)) {
    case Flow::gone:
      return;
    case Flow::stop:
      return;
    case Flow::proceed:
      break;
  }
  if (c.state == State::time_wait) {
    if (tcp.has(wire::kTcpFin)) {
      arm(c.time_wait_deadline, m_link.now_ns() + kTimeWaitNs);
      send_ack(key, c);
    }
    return;
  }
  // 5. Data and FIN.
  const bool ack_needed = process_data(it, tcp);
  if (output(it) == 0 && ack_needed) send_ack(key, c);
}

TcpNat::Flow TcpNat::process_ack(Iterator it, const wire::TcpSegment& tcp) {
  const Key key = it->first;
  Connection& c = it->second;
  const u32 ack = tcp.acknowledgment();
  const u32 seq = tcp.sequence();
  if (c.state == State::syn_received) {
    if (!(seq_gt(ack, c.snd_una) && seq_le(ack, c.snd_max))) {
      ++m_counters.dropped_not_acceptable;
      send_reset(key, ack, 0, wire::kTcpRst);
      return Flow::stop;
    }
    c.state = State::established;
    ++m_counters.connections_established;
    c.snd_wnd = u32{tcp.window()} << c.send_shift;
    c.snd_wl1 = seq;
    c.snd_wl2 = ack;
    // The SYN is acknowledged: from here on snd_una counts data (and FIN).
    c.snd_una = c.iss + 1;
    if (seq_lt(c.snd_nxt, c.snd_una)) c.snd_nxt = c.snd_una;
    c.retries = 0;
    if (c.rtt_timing && c.rtt_sequence == c.iss) {
      update_rtt(c, m_link.now_ns() - c.rtt_start_ns);
      c.rtt_timing = false;
    }
    if (c.snd_una == c.snd_max) c.rtx_deadline = 0;
  }
  if (seq_gt(ack, c.snd_max)) {
    ++m_counters.dropped_ack_unsent;
    send_ack(key, c);
    return Flow::stop;
  }
  // Window update, from the newest segment only (SND.WL1/WL2).
  bool window_changed = false;
  if (seq_lt(c.snd_wl1, seq) || (c.snd_wl1 == seq && seq_le(c.snd_wl2, ack))) {
    const u32 window = u32{tcp.window()} << c.send_shift;
    window_changed = window != c.snd_wnd;
    c.snd_wnd = window;
    c.snd_wl1 = seq;
    c.snd_wl2 = ack;
    if (window != 0) {
      c.persist_deadline = 0;
      c.persist_shift = 0;
    }
  }
  if (seq_gt(ack, c.snd_una)) {
    u32 acked = ack - c.snd_una;
    u32 fin_sequence = 0;
    const bool fin_acked = fin_queued_at(c, fin_sequence) && seq_gt(ack, fin_sequence);
    if (fin_acked) --acked;
    c.to_guest.consume(std::min<std::size_t>(acked, c.to_guest.size()));
    c.snd_una = ack;
    if (seq_lt(c.snd_nxt, ack)) c.snd_nxt = ack;
    c.dup_acks = 0;
    c.retries = 0;
    if (c.rtt_timing && seq_gt(ack, c.rtt_sequence)) {
      update_rtt(c, m_link.now_ns() - c.rtt_start_ns);
      c.rtt_timing = false;
    }
    // RFC 5681: slow start below ssthresh, then one segment per window.
    const u32 mss = payload_mss(c);
    if (c.cwnd < c.ssthresh)
      c.cwnd = std::min(c.cwnd + std::min(acked, mss), kMaxCwnd);
    else
      c.cwnd = std::min(c.cwnd + std::max<u32>(mss * mss / std::max(c.cwnd, 1u), 1), kMaxCwnd);
    if (c.snd_una == c.snd_max || c.persist_deadline != 0)
      c.rtx_deadline = 0;
    else
      start_rtx(c);
    if (c.host_paused && c.has_socket && c.to_guest.size() <= kToGuestLimit / 2) {
      m_link.machine().host().socket_pause(c.socket, false);
      c.host_paused = false;
    }
    if (fin_acked) {
      switch (c.state) {
        case State::fin_wait_1:
          c.state = State::fin_wait_2;
          break;
        case State::closing:
          ++m_counters.connections_closed;
          enter_time_wait(it);
          break;
        case State::last_ack:
          ++m_counters.connections_closed;
          if (c.has_socket && !c.to_host.empty()) {
            // The host still has guest bytes to take: drain them for
            // TIME-WAIT's length before letting go.
            enter_time_wait(it);
            return Flow::stop;
          }
          forget(it);
          return Flow::gone;
        default:
          break;
      }
    }
  } else if (ack == c.snd_una && tcp.payload().empty() && !tcp.has(wire::kTcpFin) && !window_changed &&
             c.snd_max != c.snd_una && c.snd_wnd != 0) {
    // RFC 5681 3.2: the third duplicate ACK retransmits at once.
    if (++c.dup_acks == kDupAckThreshold) {
      ++m_counters.fast_retransmits;
      const u32 flight = c.snd_max - c.snd_una;
      c.ssthresh = std::max(flight / 2, 2 * payload_mss(c));
      c.cwnd = c.ssthresh;
      retransmit_first(key, c);
      start_rtx(c);
    }
  }
  return Flow::proceed;
}

bool TcpNat::process_data(Iterator it, const wire::TcpSegment& tcp) {
  Connection& c = it->second;
  std::span<const u8> data = tcp.payload();
  bool fin = tcp.has(wire::kTcpFin);
  if (data.empty() && !fin) return false;
  if (c.guest_fin) {
    // Past the guest's FIN nothing is data; a retransmitted FIN gets an ACK.
    ++m_counters.duplicate_segments;
    return true;
  }
  // URG changes nothing: urgent bytes are ordinary data and the urgent
  // pointer, wherever it points, is never read.
  u32 seq = tcp.sequence();
  const u32 fin_sequence = seq + static_cast<u32>(data.size());
  if (seq_lt(seq, c.rcv_nxt)) {
    const std::size_t skip = std::min<std::size_t>(c.rcv_nxt - seq, data.size());
    data = data.subspan(skip);
    seq += static_cast<u32>(skip);
    if (data.empty() && (!fin || seq_lt(fin_sequence, c.rcv_nxt))) {
      ++m_counters.duplicate_segments;
      return true;
    }
  }
  // Cut at the right edge we advertised: bytes past it have no room.
  const u32 right = c.rcv_adv;
  if (!data.empty() && seq_ge(seq, right)) {
    ++m_counters.ooo_beyond_window;
    return true;
  }
  if (seq_gt(seq + static_cast<u32>(data.size()), right)) {
    data = data.first(right - seq);
    fin = false;
    ++m_counters.ooo_trimmed;
  }
  if (seq != c.rcv_nxt) {
    queue_out_of_order(c, seq, data, fin);
    return true;
  }
  assert(c.to_host.size() + data.size() <= kToHostLimit);
  c.to_host.append(data);
  c.rcv_nxt += static_cast<u32>(data.size());
  const bool queued_fin = merge_out_of_order(c);
  if (fin || queued_fin || c.to_host.size() >= kFlushNowBytes) {
    flush_to_host(it);
  } else if (c.flush_deadline == 0) {
    arm(c.flush_deadline, m_link.now_ns() + kFlushDelayNs);
  }
  if (fin || queued_fin) guest_fin_in_sequence(it);
  return true;
}

void TcpNat::queue_out_of_order(Connection& c, u32 sequence, std::span<const u8> bytes, bool fin) {
  if (bytes.empty() && !fin) return;
  const u32 offset = sequence - c.rcv_nxt;
  std::size_t total = 0;
  for (const OutOfOrder& e : c.out_of_order) {
    const u32 e_offset = e.sequence - c.rcv_nxt;
    // Already held whole: a duplicate.
    if (e_offset <= offset && offset + bytes.size() <= e_offset + e.bytes.size() && (e.fin || !fin)) {
      ++m_counters.duplicate_segments;
      return;
    }
    total += e.bytes.size();
  }
  if (c.out_of_order.size() >= kOutOfOrderSegments || total + bytes.size() > kOutOfOrderBytes) {
    ++m_counters.ooo_dropped_limit;
    return;
  }
  const auto position = std::find_if(c.out_of_order.begin(), c.out_of_order.end(), [&](const OutOfOrder& e) {
    const u32 e_offset = e.sequence - c.rcv_nxt;
    return e_offset > offset || (e_offset == offset && e.bytes.size() < bytes.size());
  });
  c.out_of_order.insert(position, OutOfOrder{sequence, std::vector<u8>(bytes.begin(), bytes.end()), fin});
  ++m_counters.ooo_queued;
}

bool TcpNat::merge_out_of_order(Connection& c) {
  bool fin = false;
  std::size_t used = 0;
  for (; used < c.out_of_order.size(); ++used) {
    const OutOfOrder& e = c.out_of_order[used];
    if (seq_gt(e.sequence, c.rcv_nxt)) break;  // a gap remains
    const u32 end = e.sequence + static_cast<u32>(e.bytes.size());
    if (seq_gt(end, c.rcv_nxt)) {
      const std::size_t skip = c.rcv_nxt - e.sequence;
      c.to_host.append(std::span<const u8>(e.bytes).subspan(skip));
      c.rcv_nxt = end;
      ++m_counters.ooo_merged;
    }
    if (e.fin && end == c.rcv_nxt) {
      fin = true;
      ++used;
      break;
    }
  }
  c.out_of_order.erase(c.out_of_order.begin(), c.out_of_order.begin() + static_cast<std::ptrdiff_t>(used));
  // Nothing follows a FIN; whatever was queued past it is meaningless.
  if (fin) c.out_of_order.clear();
  assert(c.to_host.size() <= kToHostLimit);
  return fin;
}

void TcpNat::guest_fin_in_sequence(Iterator it) {
  Connection& c = it->second;
  c.rcv_nxt += 1;
  c.guest_fin = true;
  c.out_of_order.clear();
  switch (c.state) {
    case State::established:
      c.state = State::close_wait;
      break;
    case State::fin_wait_1:
      c.state = State::closing;
      break;
    case State::fin_wait_2:
      ++m_counters.connections_closed;
      enter_time_wait(it);
      break;
    default:
      break;
  }
  finish_host_side(it);
}

void TcpNat::enter_time_wait(Iterator it) {
  Connection& c = it->second;
  c.state = State::time_wait;
  c.rtx_deadline = 0;
  c.persist_deadline = 0;
  c.out_of_order.clear();
  c.out_of_order.shrink_to_fit();
  arm(c.time_wait_deadline, m_link.now_ns() + kTimeWaitNs);
  finish_host_side(it);
}

}  // namespace reel
