#pragma once

// The TCP NAT of `-net user`: for every guest connection a TCP endpoint
// toward the guest (RFC 9293, with window scaling and timestamps from
// RFC 7323 and the retransmission timer of RFC 6298) bridged to one
// non-blocking host socket, and the same for port forwards in the other
// direction. All timing is virtual (GatewayLink::now_ns, wake_at), all
// state is plain values, so a connection survives a snapshot and hashes
// the same in record and replay.

#include <algorithm>
#include <cereal/types/common.hpp>
#include <cereal/types/map.hpp>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/host_io.h"
#include "core/state_archive.h"
#include "core/types.h"
#include "netstack/gateway_link.h"

namespace reel {

namespace wire {
class Ipv4Packet;
class TcpSegment;
}  // namespace wire

class TcpNat {
 public:
  // At least 4096 live connections (libslirp has no limit but the host's
  // descriptors); TIME-WAIT records count too but are recycled first.
  static constexpr std::size_t kMaxConnections = 4096;
  // Bytes from the guest the host socket has not taken yet. It is the
  // window we advertise, kept below 64 KiB so that our window scale is 0
  // and rounding can never shrink an advertised window.
  static constexpr std::size_t kToHostLimit = 65535;
  // Guest data is handed to the host socket in batches, like libslirp
  // writing once per poll round: a send() per segment costs a system call
  // each. Bytes wait at most kFlushDelayNs of virtual time, and never once
  // half the buffer is full (so the window we advertise stays open), nor
  // behind the guest's FIN.
  static constexpr u64 kFlushDelayNs = 20'000;
  static constexpr std::size_t kFlushNowBytes = kToHostLimit / 2;
  // Bytes from the host not yet acknowledged by the guest: reading the
  // host socket pauses at kToGuestLimit and resumes below half of it. A
  // read already under way may overshoot; beyond kToGuestHardLimit the
  // stream could only be kept by buffering without bound, so it is reset.
  static constexpr std::size_t kToGuestLimit = 256 * 1024;
  static constexpr std::size_t kToGuestHardLimit = 2 * kToGuestLimit;
  // Out-of-order segments kept for reassembly (all inside the window).
  static constexpr std::size_t kOutOfOrderSegments = 32;
  static constexpr std::size_t kOutOfOrderBytes = kToHostLimit;
  // Our MTU is 1500: 1460 bytes of payload after 40 bytes of headers.
  static constexpr u16 kMss = 1460;
  static constexpr u16 kDefaultGuestMss = 536;  // RFC 9293 3.7.1, when the SYN has no MSS option
  // RFC 6298: initial RTO 1 s, floor 200 ms (Linux's, below the RFC's 1 s,
  // as a LAN-like link deserves), ceiling 60 s.
  static constexpr u64 kInitialRtoNs = 1'000'000'000;
  static constexpr u64 kMinRtoNs = 200'000'000;
  static constexpr u64 kMaxRtoNs = 60'000'000'000;
  static constexpr u32 kMaxRetries = 12;        // libslirp's TCP_MAXRXTSHIFT
  static constexpr u32 kMaxSynRetries = 6;      // our SYN or SYN-ACK to the guest (Linux's tcp_syn_retries)
  static constexpr u64 kMslNs = 5'000'000'000;  // libslirp's TCPTV_MSL: TIME-WAIT is 2*MSL = 10 s
  static constexpr u64 kTimeWaitNs = 2 * kMslNs;
  static constexpr u32 kDupAckThreshold = 3;

  explicit TcpNat(GatewayLink& link);
  TcpNat(const TcpNat&) = delete;
  TcpNat& operator=(const TcpNat&) = delete;

  // A TCP segment from the guest. The IPv4 view is checked and
  // unfragmented; the TCP header and checksum are checked here.
  void guest_segment(const wire::Ipv4Packet& ip);
  // Port forwarding: the gateway accepted host connection `accepted` from
  // `peer`; open it toward guest_ip:guest_port. The socket belongs to the
  // TcpNat from here on (closed when the guest refuses or never answers).
  void forward_accepted(SocketId accepted, const SocketAddress& peer, u32 guest_ip, u16 guest_port);
  // Acts on the timers due at `now_ns` (retransmission, persist,
  // TIME-WAIT); being called early or twice is harmless.
  void on_timer(u64 now_ns);
  // Registers the socket handlers again after a state load.
  void rebind_sockets();
  // Closes every host socket and forgets every connection (no segments
  // are sent: the guest side is gone too). Not done by the destructor:
  // the machine's handler table may already be gone then, and closing is a
  // journaled host call that must happen at a deterministic point.
  void close_all();

  struct Counters {
    u64 segments_in = 0;
    u64 segments_out = 0;
    u64 segments_lost = 0;  // send_to_guest refused (guest MAC unknown)
    u64 bytes_to_host = 0;
    u64 bytes_to_guest = 0;  // new data, not retransmissions
    // Bad input
    u64 dropped_malformed = 0;  // short header, bad data offset, bad options
    u64 dropped_bad_checksum = 0;
    u64 dropped_no_ack = 0;          // a segment without ACK in a synchronized state
    u64 dropped_not_acceptable = 0;  // outside the receive window (answered with an ACK)
    u64 dropped_ack_unsent = 0;      // acknowledges bytes never sent (answered with an ACK)
    u64 duplicate_segments = 0;      // data already received
    u64 challenge_acks = 0;          // RFC 5961: in-window RST that is not exact, SYN on a connection
    u64 syn_while_connecting = 0;    // retransmitted SYN while the host connect is pending
    u64 syn_data_ignored = 0;        // data or FIN riding on a guest SYN (sent again after the handshake)
    u64 dropped_paws = 0;            // RFC 7323 PAWS: an older timestamp than the last in-sequence one
    // Unknown connections
    u64 rst_for_unknown = 0;      // RFC 9293 3.10.7.1 reset sent
    u64 ignored_unknown_rst = 0;  // never answer a RST
    // Opening
    u64 connections_opened = 0;  // guest SYN, host socket opened
    u64 connections_established = 0;
    u64 refused_by_policy = 0;   // host_target() said no: RST
    u64 refused_limit = 0;       // kMaxConnections reached: RST
    u64 socket_open_failed = 0;  // HostIO refused the socket: RST|ACK
    u64 connect_failed = 0;      // the host refused or timed out: RST|ACK
    u64 forwards_opened = 0;
    u64 forwards_refused = 0;  // limit reached or the same 4-tuple is in use
    u64 forwards_reset = 0;    // the guest answered the forward's SYN with RST
    u64 forward_syn_timeouts = 0;
    // Closing
    u64 resets_from_guest = 0;
    u64 ignored_rst = 0;           // outside the window
    u64 host_errors = 0;           // RST sent to the guest
    u64 host_overflow_resets = 0;  // the host delivered past kToGuestHardLimit
    u64 connections_closed = 0;    // orderly, after FIN both ways
    u64 time_wait_expired = 0;
    u64 time_wait_recycled = 0;  // a new SYN on the same tuple, or the limit
    u64 to_host_discarded = 0;   // bytes the host never took when the connection went
    // Retransmission
    u64 retransmits = 0;  // segments sent again (RTO, fast retransmit)
    u64 rto_expirations = 0;
    u64 fast_retransmits = 0;
    u64 give_ups = 0;  // kMaxRetries exhausted: RST and close
    u64 persist_probes = 0;
    // Reassembly
    u64 ooo_queued = 0;
    u64 ooo_trimmed = 0;        // cut at the window's end
    u64 ooo_beyond_window = 0;  // starting at or beyond the window's end: dropped
    u64 ooo_dropped_limit = 0;  // the queue's segment or byte limit
    u64 ooo_merged = 0;
    u64 ignored_host_events = 0;  // accepted/datagram on a stream, or a late event
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(segments_in), REEL_FIELD(segments_out), REEL_FIELD(segments_lost),
         REEL_FIELD(bytes_to_host), REEL_FIELD(bytes_to_guest), REEL_FIELD(dropped_malformed),
         REEL_FIELD(dropped_bad_checksum), REEL_FIELD(dropped_no_ack), REEL_FIELD(dropped_not_acceptable),
         REEL_FIELD(dropped_ack_unsent), REEL_FIELD(duplicate_segments), REEL_FIELD(challenge_acks),
         REEL_FIELD(syn_while_connecting), REEL_FIELD(syn_data_ignored), REEL_FIELD(dropped_paws),
         REEL_FIELD(rst_for_unknown), REEL_FIELD(ignored_unknown_rst), REEL_FIELD(connections_opened),
         REEL_FIELD(connections_established), REEL_FIELD(refused_by_policy), REEL_FIELD(refused_limit),
         REEL_FIELD(socket_open_failed), REEL_FIELD(connect_failed), REEL_FIELD(forwards_opened),
         REEL_FIELD(forwards_refused), REEL_FIELD(forwards_reset), REEL_FIELD(forward_syn_timeouts),
         REEL_FIELD(resets_from_guest), REEL_FIELD(ignored_rst), REEL_FIELD(host_errors),
         REEL_FIELD(host_overflow_resets), REEL_FIELD(connections_closed), REEL_FIELD(time_wait_expired),
         REEL_FIELD(time_wait_recycled), REEL_FIELD(to_host_discarded), REEL_FIELD(retransmits),
         REEL_FIELD(rto_expirations), REEL_FIELD(fast_retransmits), REEL_FIELD(give_ups),
         REEL_FIELD(persist_probes), REEL_FIELD(ooo_queued), REEL_FIELD(ooo_trimmed),
         REEL_FIELD(ooo_beyond_window), REEL_FIELD(ooo_dropped_limit), REEL_FIELD(ooo_merged),
         REEL_FIELD(ignored_host_events));
    }
  };
  const Counters& counters() const { return m_counters; }
  std::size_t connection_count() const { return m_connections.size(); }

  // The guest side's state names, as libslirp (and BSD) print them.
  enum class State : u8 {
    connecting,  // guest SYN seen, host connect pending (no SYN-ACK yet)
    syn_sent,    // forward: our SYN is out
    syn_received,
    established,
    close_wait,
    fin_wait_1,
    fin_wait_2,
    closing,
    last_ack,
    time_wait,
  };
  static const char* state_name(State state);

  // Connections in (guest ip, guest port, remote ip, remote port) order,
  // one line each, with libslirp's facts: "TCP[ESTABLISHED] socket 3
  // 10.0.2.15:1234 <-> 10.0.2.2:80 recvq 0 sendq 0" (recvq: guest bytes
  // the host has not taken; sendq: host bytes the guest has not
  // acknowledged; "fwd" marks port forwards, "-" a socket already closed).
  std::vector<std::string> describe_connections() const;

  // For tests and `info usernet`: one connection's sequence state.
  struct ConnectionInfo {
    State state = State::connecting;
    bool forwarded = false;
    bool has_socket = false;
    SocketId socket = 0;
    u32 snd_una = 0;
    u32 snd_nxt = 0;
    u32 snd_wnd = 0;  // the guest's window, scaled
    u32 rcv_nxt = 0;
    u32 rcv_wnd = 0;  // what we advertise now
    u64 rto_ns = 0;
    u32 retries = 0;
    std::size_t to_host_bytes = 0;
    std::size_t to_guest_bytes = 0;
    std::size_t out_of_order_segments = 0;
    bool host_paused = false;
  };
  std::optional<ConnectionInfo> connection(u32 guest_ip, u16 guest_port, u32 remote_ip,
                                           u16 remote_port) const;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_connections), REEL_FIELD(m_armed_ns), REEL_FIELD(m_counters));
    if constexpr (Archive::is_loading::value) rebuild_socket_index();
  }

 private:
  struct Key {
    u32 guest_ip = 0;
    u16 guest_port = 0;
    u32 remote_ip = 0;
    u16 remote_port = 0;
    auto operator<=>(const Key&) const = default;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(guest_ip), REEL_FIELD(guest_port), REEL_FIELD(remote_ip), REEL_FIELD(remote_port));
    }
  };

 public:
  // Public for its unit tests.
  // A ring of bytes with a fixed bound, so that a bulk stream copies each
  // byte in once and out once (a vector compacted to its front copied it
  // again). The storage grows by doubling up to the bound and is released
  // when the queue drains.
  class ByteQueue {
   public:
    explicit ByteQueue(std::size_t bound) : m_bound(bound) {}
    std::size_t size() const { return m_size; }
    bool empty() const { return m_size == 0; }
    std::size_t bound() const { return m_bound; }
    std::size_t capacity() const { return m_capacity; }
    // The live bytes [offset, offset + length) as at most two spans, in order.
    struct Parts {
      std::span<const u8> first;
      std::span<const u8> second;
    };
    Parts parts(std::size_t offset, std::size_t length) const;
    Parts parts() const { return parts(0, m_size); }
    // The same bytes as one span: a view into the ring unless they wrap, in
    // which case they are copied into scratch (at least length bytes).
    std::span<const u8> contiguous(std::size_t offset, std::size_t length, std::span<u8> scratch) const;
    // Asserts that size() + bytes.size() <= bound(): callers check the limit.
    void append(std::span<const u8> bytes);
    void consume(std::size_t count);
    template <class Archive>
    void serialize(Archive& ar) {
      // The live bytes in order, never the raw ring, so that state hashes
      // depend only on the logical content.
      std::vector<u8> bytes;
      if constexpr (!Archive::is_loading::value) {
        bytes.reserve(m_size);
        const Parts p = parts();
        bytes.insert(bytes.end(), p.first.begin(), p.first.end());
        bytes.insert(bytes.end(), p.second.begin(), p.second.end());
      }
      ar(cereal::make_nvp("bytes", bytes));
      if constexpr (Archive::is_loading::value) {
        m_ring.reset();
        m_capacity = 0;
        m_head = 0;
        m_size = 0;
        append(std::span<const u8>(bytes).first(std::min(bytes.size(), m_bound)));
      }
    }

   private:
    void grow(std::size_t needed);
    // The ring, left uninitialised when allocated: only bytes appended are
    // ever read, and a bulk stream reallocates it each time it drains.
    std::unique_ptr<u8[]> m_ring;
    std::size_t m_capacity = 0;
    std::size_t m_head = 0;  // index of the first live byte
    std::size_t m_size = 0;
    std::size_t m_bound;
    // A sizing hint only: it never changes which bytes are queued, so it
    // stays out of the state.
    std::size_t m_last_capacity = 0;
  };

 private:
  struct OutOfOrder {
    u32 sequence = 0;
    std::vector<u8> bytes;
    bool fin = false;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(sequence), REEL_FIELD(bytes), REEL_FIELD(fin));
    }
  };

  struct Connection {
    State state = State::connecting;
    bool forwarded = false;
    bool has_socket = false;
    SocketId socket = 0;
    bool host_paused = false;
    bool host_eof = false;       // FIN to send after to_guest
    bool host_shutdown = false;  // we shut the host socket's sending side
    bool guest_fin = false;      // the guest's FIN is in sequence
    // Negotiated at the handshake.
    u16 send_mss = kDefaultGuestMss;  // payload per segment, options included
    bool window_scaling = false;
    u8 send_shift = 0;  // the guest's window scale
    bool timestamps = false;
    u32 ts_recent = 0;
    u32 last_ack_sent = 0;
    // Toward the guest (RFC 9293 3.3.1 names). to_guest holds the bytes
    // from snd_una on; the FIN, once queued, sits at snd_una + size.
    u32 iss = 0;
    u32 snd_una = 0;
    u32 snd_nxt = 0;
    u32 snd_max = 0;
    u32 snd_wnd = 0;
    u32 snd_wl1 = 0;
    u32 snd_wl2 = 0;
    ByteQueue to_guest{kToGuestHardLimit};
    // From the guest.
    u32 irs = 0;
    u32 rcv_nxt = 0;
    u32 rcv_adv = 0;  // the right edge we advertised
    ByteQueue to_host{kToHostLimit};
    std::vector<OutOfOrder> out_of_order;  // sorted by sequence, no two equal
    // Timers (0: off), RFC 6298 estimator, Karn's one timed segment.
    u64 rtx_deadline = 0;
    u64 persist_deadline = 0;
    u64 time_wait_deadline = 0;
    u64 flush_deadline = 0;  // to_host waits for a batch until then
    u64 rto_ns = kInitialRtoNs;
    u64 srtt_ns = 0;
    u64 rttvar_ns = 0;
    u32 retries = 0;
    u32 persist_shift = 0;
    bool rtt_timing = false;
    u32 rtt_sequence = 0;
    u64 rtt_start_ns = 0;
    u32 dup_acks = 0;
    // RFC 5681 slow start and congestion avoidance, so that a retransmission
    // does not resend a whole window into a small NIC ring at once.
    u32 cwnd = 0;
    u32 ssthresh = 0;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(state), REEL_FIELD(forwarded), REEL_FIELD(has_socket), REEL_FIELD(socket),
         REEL_FIELD(host_paused), REEL_FIELD(host_eof), REEL_FIELD(host_shutdown), REEL_FIELD(guest_fin),
         REEL_FIELD(send_mss), REEL_FIELD(window_scaling), REEL_FIELD(send_shift), REEL_FIELD(timestamps),
         REEL_FIELD(ts_recent), REEL_FIELD(last_ack_sent), REEL_FIELD(iss), REEL_FIELD(snd_una),
         REEL_FIELD(snd_nxt), REEL_FIELD(snd_max), REEL_FIELD(snd_wnd), REEL_FIELD(snd_wl1),
         REEL_FIELD(snd_wl2), REEL_FIELD(to_guest), REEL_FIELD(irs), REEL_FIELD(rcv_nxt), REEL_FIELD(rcv_adv),
         REEL_FIELD(to_host), REEL_FIELD(out_of_order), REEL_FIELD(rtx_deadline),
         REEL_FIELD(persist_deadline), REEL_FIELD(time_wait_deadline), REEL_FIELD(rto_ns),
         REEL_FIELD(srtt_ns), REEL_FIELD(rttvar_ns), REEL_FIELD(retries), REEL_FIELD(persist_shift),
         REEL_FIELD(rtt_timing), REEL_FIELD(rtt_sequence), REEL_FIELD(rtt_start_ns), REEL_FIELD(dup_acks),
         REEL_FIELD(cwnd), REEL_FIELD(ssthresh), REEL_FIELD(flush_deadline));
    }
  };
  using Connections = std::map<Key, Connection>;
  using Iterator = Connections::iterator;

  // What a segment toward the guest carries besides sequence numbers.
  struct Outgoing {
    u32 sequence = 0;
    u32 acknowledgment = 0;
    u8 flags = 0;
    std::span<const u8> payload;
  };

  void rebuild_socket_index();
  void bind_socket(SocketId socket);
  void on_socket_event(SocketId socket, const SocketEvent& event);

  // Guest input by state.
  void guest_syn(const Key& key, const wire::TcpSegment& tcp);
  void syn_sent_input(Iterator it, const wire::TcpSegment& tcp);
  void synchronized_input(Iterator it, const wire::TcpSegment& tcp);
  // What is left to do with a segment after one step of its processing.
  enum class Flow : u8 { proceed, stop, gone };
  Flow process_ack(Iterator it, const wire::TcpSegment& tcp);
  // Returns true when the segment deserves an ACK.
  bool process_data(Iterator it, const wire::TcpSegment& tcp);
  void queue_out_of_order(Connection& c, u32 sequence, std::span<const u8> bytes, bool fin);
  // Returns true when a queued FIN became in-sequence.
  bool merge_out_of_order(Connection& c);
  void guest_fin_in_sequence(Iterator it);
  void take_options(Connection& c, const wire::TcpSegment& tcp);

  // Host side.
  void host_connected(Iterator it);
  void host_data(Iterator it, std::span<const u8> bytes);
  void flush_to_host(Iterator it);
  void maybe_window_update(Iterator it);
  void finish_host_side(Iterator it);
  void close_socket(Connection& c);

  // Output toward the guest.
  // Sends what the windows allow; returns the number of segments.
  int output(Iterator it);
  void send_segment(const Key& key, Connection& c, const Outgoing& out);
  // Hands a segment built at frame[GatewayLink::kFrameHeadroom, + size) to
  // the gateway, counting it sent or lost.
  void to_guest(const Key& key, std::span<u8> frame, std::size_t size);
  void send_ack(const Key& key, Connection& c);
  void send_syn_ack(const Key& key, Connection& c);
  void send_syn(const Key& key, Connection& c);
  void send_reset(const Key& key, u32 sequence, u32 acknowledgment, u8 flags);
  void reset_and_forget(Iterator it);
  void forget(Iterator it);
  void enter_time_wait(Iterator it);
  void retransmit_first(const Key& key, Connection& c);

  // Timers.
  void on_retransmit_timer(Iterator it, u64 now);
  void on_persist_timer(Iterator it, u64 now);
  void arm(u64& deadline, u64 when);
  void start_rtx(Connection& c);
  void start_persist(Connection& c);
  void update_rtt(Connection& c, u64 sample_ns);

  u32 receive_window(const Connection& c) const;
  u32 timestamp_now() const;
  u32 payload_mss(const Connection& c) const;
  bool fin_queued_at(const Connection& c, u32& fin_sequence) const;
  bool is_synchronized(State state) const;
  bool recycle_time_wait();

  GatewayLink& m_link;
  Connections m_connections;
  std::map<SocketId, Key> m_by_socket;  // derived from m_connections, rebuilt on load
  u64 m_armed_ns = 0;                   // the earliest wake_at we asked for and have not seen
  Counters m_counters;
};

}  // namespace reel
