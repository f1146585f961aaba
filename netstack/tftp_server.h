#pragma once

// The TFTP server of `-net user` (QEMU's tftp=, -tftp): read-only RFC 1350
// with the option extension (RFC 2347) for blksize (2348), tsize and
// timeout (2349), served from the gateway address's port 69.
//
// Choices, and why:
// - Like libslirp, every reply comes from port 69 (no new transfer id) and
//   a session is keyed by the client's address and port. An RRQ repeating
//   the one that opened a session that has not gone past block 1 is the
//   client retrying a lost answer: the answer is resent, the file not read
//   again. Any other RRQ from that client replaces its session (the client
//   gave up on it). ACKs and ERRORs from clients without a session are
//   dropped silently, as libslirp does (RFC 1350 would answer error 5).
// - Only octet mode. netascii and mail are refused with error 4
//   ("Unsupported transfer mode"), as libslirp does: serving bytes as-is
//   under the netascii name would silently differ from a real server.
// - blksize is granted up to 1428, libslirp's cap, so a client sees the
//   same OACK under reel as under QEMU (1468 would still fit a 1500-byte
//   MTU: 1468 + 4 + 8 + 20); the OACK names the value used. tsize is answered with the file size when the
//   client sent 0. timeout (1..255 s) becomes the retransmission interval.
// - Retransmission runs on virtual time: the last DATA or OACK is resent
//   every interval (1 s unless the timeout option says otherwise) up to
//   kMaxRetries times, after which the session ends silently. That is also
//   the idle expiry: a session only lives while the client keeps ACKing.
//   Only the timer resends; a duplicate ACK never does (RFC 1123 4.2.3.1,
//   the sorcerer's apprentice).
// - Block numbers wrap (block 0 follows 65535), so files of any size up to
//   HostIO's cap transfer; the session tracks the 64-bit block index and
//   matches ACKs against its low 16 bits.
// - The file is read once per session with HostIO::read_file_under(),
//   which journals the contents, so a replay needs nothing on disk. The
//   bytes live in the session (and so in its state) until it ends.
// - At most kMaxSessions (libslirp's 20) sessions; an RRQ beyond that is
//   dropped without an answer, as libslirp does, so the client's own retry
//   succeeds once a session ends. The sessions together hold at most
//   kMaxHeldBytes of file contents; a file that would pass it gets error 3
//   ("Allocation exceeded"), so a guest cannot pin 20 copies of a huge file.
// - Error replies: 1 file not found, 2 access violation (names the jail
//   refuses, over-long names, no root configured), 4 illegal operation
//   (WRQ, DATA, unknown opcodes, modes other than octet), 8 option
//   negotiation refused (a request with more options than the parser
//   takes). A client's ERROR (8 after an OACK included) ends its session;
//   errors are never answered.

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/state_archive.h"
#include "core/types.h"
#include "netstack/gateway_link.h"
#include "netstack/wire/tftp.h"

namespace reel {

namespace wire {
class Ipv4Packet;
class UdpDatagram;
}  // namespace wire

class TftpServer {
 public:
  static constexpr std::size_t kMaxSessions = 20;
  static constexpr u16 kMaxGrantedBlockSize = 1428;
  static constexpr u64 kDefaultRetransmitNs = 1'000'000'000;
  static constexpr u32 kMaxRetries = 5;
  static constexpr u64 kMaxHeldBytes = u64{512} << 20;

  // Serves link.config().tftp_root; with an empty root every RRQ gets
  // "access violation", as libslirp answers without a tftp= prefix.
  // max_held_bytes is there for tests.
  explicit TftpServer(GatewayLink& link, u64 max_held_bytes = kMaxHeldBytes);

  // A UDP datagram from the guest to the gateway's port 69; the gateway
  // has checked the IPv4 and UDP headers and checksum.
  void guest_datagram(const wire::Ipv4Packet& ip, const wire::UdpDatagram& udp);
  // Retransmits what is due and ends sessions out of retries.
  void on_timer(u64 now_ns);

  struct Counters {
    u64 packets_in = 0;
    u64 requests = 0;            // RRQs that opened a session
    u64 sessions_replaced = 0;   // an RRQ from a client that had a session
    u64 duplicate_requests = 0;  // the same RRQ again early on: answer resent
    u64 sessions_completed = 0;  // the last block ACKed
    u64 sessions_timed_out = 0;  // retries exhausted
    u64 sessions_aborted = 0;    // the client sent an ERROR
    u64 oacks_sent = 0;
    u64 data_sent = 0;        // DATA blocks, first sends
    u64 retransmissions = 0;  // DATA or OACK resent by the timer
    u64 errors_sent = 0;
    u64 send_failures = 0;   // the gateway could not reach the guest (MAC unknown)
    u64 acks_in = 0;         // ACKs that advanced a session
    u64 duplicate_acks = 0;  // the ACK before the one expected (no resend)
    u64 stray_acks = 0;      // any other block number
    // Refusals, each answered with a TFTP error.
    u64 refused_not_found = 0;         // 1: missing or unreadable
    u64 refused_access = 0;            // 2: the jail refused the name
    u64 refused_name_too_long = 0;     // 2: over 512 bytes
    u64 refused_no_root = 0;           // 2: no tftp= directory
    u64 refused_write = 0;             // 4: WRQ
    u64 refused_mode = 0;              // 4: netascii or mail
    u64 refused_opcode = 0;            // 4: not 1..6
    u64 refused_unexpected = 0;        // 4: DATA or OACK sent to a server
    u64 refused_too_many_options = 0;  // 8
    u64 refused_allocation = 0;        // 3: kMaxHeldBytes would be passed
    // Dropped without an answer.
    u64 dropped_malformed = 0;       // short, unterminated strings, empty names
    u64 dropped_no_session = 0;      // ACK or ERROR from a client without a session
    u64 dropped_session_limit = 0;   // RRQ while kMaxSessions are open
    u64 sessions_lost_contents = 0;  // restored from a snapshot whose file the store had let go
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(packets_in), REEL_FIELD(requests), REEL_FIELD(sessions_replaced),
         REEL_FIELD(duplicate_requests), REEL_FIELD(sessions_completed), REEL_FIELD(sessions_timed_out),
         REEL_FIELD(sessions_aborted), REEL_FIELD(oacks_sent), REEL_FIELD(data_sent),
         REEL_FIELD(retransmissions), REEL_FIELD(errors_sent), REEL_FIELD(send_failures), REEL_FIELD(acks_in),
         REEL_FIELD(duplicate_acks), REEL_FIELD(stray_acks), REEL_FIELD(refused_not_found),
         REEL_FIELD(refused_access), REEL_FIELD(refused_name_too_long), REEL_FIELD(refused_no_root),
         REEL_FIELD(refused_write), REEL_FIELD(refused_mode), REEL_FIELD(refused_opcode),
         REEL_FIELD(refused_unexpected), REEL_FIELD(refused_too_many_options), REEL_FIELD(refused_allocation),
         REEL_FIELD(dropped_malformed), REEL_FIELD(dropped_no_session), REEL_FIELD(dropped_session_limit),
         REEL_FIELD(sessions_lost_contents));
    }
  };
  const Counters& counters() const { return m_counters; }
  std::size_t session_count() const { return m_sessions.size(); }
  // The earliest retransmission deadline, kNever without sessions.
  u64 next_deadline() const;
  // File bytes the open sessions hold.
  u64 held_bytes() const;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_sessions), REEL_FIELD(m_wake_ns), REEL_FIELD(m_counters));
    if constexpr (Archive::is_loading::value) attach_contents();
  }

 private:
  struct Session {
    u32 client_ip = 0;
    u16 client_port = 0;
    std::vector<u8> request;  // the RRQ that opened it, to recognise a retry
    // The file's bytes live in the content store (m_contents); the state
    // names them by size and XXH3-64, so a state hash covers them without
    // hashing megabytes at every checkpoint, and a snapshot stays small.
    u64 file_size = 0;
    u64 file_hash = 0;
    std::shared_ptr<const std::vector<u8>> file;  // not state: found again by file_hash
    u16 block_size = 512;
    u64 interval_ns = kDefaultRetransmitNs;
    // Index of the last block sent (1-based; 0 while an OACK waits for
    // ACK 0). Its low 16 bits are the block number the client must ACK.
    u64 block = 0;
    std::vector<u8> last_sent;  // the TFTP message the timer resends
    u32 retries = 0;
    u64 deadline_ns = 0;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(client_ip), REEL_FIELD(client_port), REEL_FIELD(request), REEL_FIELD(file_size),
         REEL_FIELD(file_hash), REEL_FIELD(block_size), REEL_FIELD(interval_ns), REEL_FIELD(block),
         REEL_FIELD(last_sent), REEL_FIELD(retries), REEL_FIELD(deadline_ns));
    }
  };

  const std::string& root() const;
  // The session of client ip:port, or m_sessions.size().
  std::size_t find_session(u32 ip, u16 port) const;
  void handle_rrq(u32 client_ip, u16 client_port, const wire::TftpPacket& request,
                  std::span<const u8> request_bytes);
  void handle_ack(std::size_t session, u16 block);
  // The final block is the first shorter than block_size (possibly empty).
  u64 block_count(const Session& s) const { return s.file_size / s.block_size + 1; }
  // Keeps `bytes` in the content store (shared with any earlier read of the
  // same contents) and returns them with their hash.
  std::shared_ptr<const std::vector<u8>> store(std::vector<u8> bytes, u64& hash);
  // After a state load: each session finds its file again by hash. One
  // whose contents the store no longer has ends at its next step.
  void attach_contents();
  // Sends block `index` and makes it the one to resend.
  void send_block(Session& s, u64 index);
  // Sends the session's last message again or for the first time, and arms its timer.
  void transmit(Session& s);
  void send_error(u32 client_ip, u16 client_port, wire::TftpErrorCode code, std::string_view message);
  // Replies come from the gateway address's port 69, like libslirp's.
  bool send_udp(u32 client_ip, u16 client_port, std::span<const u8> message);
  void end_session(std::size_t session);
  void arm_timer();

  GatewayLink& m_link;
  u64 m_max_held_bytes;
  std::vector<Session> m_sessions;
  // Contents read by this server, by XXH3-64, kept after their sessions end
  // (so that a snapshot taken during a transfer can be resumed) until they
  // pass m_max_held_bytes, then the oldest unused go first. Not state: the
  // sessions name their contents by hash.
  std::map<u64, std::shared_ptr<const std::vector<u8>>> m_contents;
  std::vector<u64> m_content_order;  // hashes, oldest first  // in the order they started
  // The wake_at() asked for since the last on_timer() (kNever: none).
  // Deadlines only move later as ACKs arrive, so one pending wake is
  // enough, instead of one per DATA; every on_timer() asks again for the
  // earliest deadline.
  u64 m_wake_ns = kNever;
  Counters m_counters;
};

}  // namespace reel
