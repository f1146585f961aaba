#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/types.h"

namespace reel {

class VirtualClock;

// A console channel: a serial port or the monitor. The id is the index of
// the open_console() call, so it is the same in record and replay.
using ChannelId = u32;

struct ConsoleSpec {
  enum class Kind : u8 {
    none,
    stdio,
    file,
    unix_server,  // a Unix socket at `path` taking one client at a time
  };
  std::string name;  // "serial0", "monitor"
  Kind kind = Kind::none;
  std::string path;              // for Kind::file and Kind::unix_server
  bool wants_input = false;      // stdio: bytes typed on stdin become input
  bool wait_for_client = false;  // unix_server: block at open until a client connects
};

struct HostFile {
  bool ok = false;
  std::vector<u8> bytes;
  std::string error;  // one line, when !ok
  // read_file_under() only: the name was refused by the jail (absolute,
  // "..", outside the root, not a regular file), as opposed to missing or
  // unreadable, so a server can answer "access violation" rather than
  // "file not found". Refusal errors start with kHostFileRefusedPrefix.
  bool refused = false;
};
inline constexpr const char* kHostFileRefusedPrefix = "refused: ";
// Larger files are refused by read_file_under(): every byte is journaled.
inline constexpr u64 kMaxHostFileUnder = u64{256} << 20;

// How a run ended, for the journal's end event and the exit status.
struct RunEnd {
  enum class Kind : u8 { guest_exit, shutdown, stuck, interrupted, journal_end };
  Kind kind = Kind::guest_exit;
  int status = 0;  // process exit status reel will return
  u64 icount = 0;
  u64 time_ns = 0;
  u64 state_hash = 0;
};

// A host socket. Ids count up from 0 over socket_open() results and
// accepted connections, in the order the machine sees them, so they are the
// same in record and replay.
using SocketId = u32;

// An IPv4 address and port, both in host byte order.
struct SocketAddress {
  u32 ip = 0;
  u16 port = 0;
  bool operator==(const SocketAddress&) const = default;
};
std::string format_socket_address(const SocketAddress& a);  // "127.0.0.1:1234"
std::string format_ipv4(u32 ip);                            // "10.0.2.15" (host order in)

struct SocketSpec {
  enum class Kind : u8 {
    tcp_listen,     // bind host:port, listen; connections arrive as `accepted`
    tcp_connect,    // non-blocking connect to host:port; `connected` or `connect_failed`
    udp,            // bound to host:port (port 0: any); socket_send_to() and `datagram`s
    udp_multicast,  // joined to group host:port with loopback on; local_host picks the
                    // interface; socket_send() goes to the group
    icmp_echo,      // an unprivileged ping socket (needs net.ipv4.ping_group_range); host
                    // empty or an address to bind; socket_send_to() sends one ICMP echo
                    // request (the host rewrites its identifier and checksum); replies are
                    // `datagram`s holding the ICMP message
  };
  Kind kind = Kind::tcp_connect;
  std::string host;  // a name or dotted quad; empty = any address (listen, udp)
  u16 port = 0;
  std::string local_host;  // udp_multicast: the interface address (localaddr=)
};

struct SocketOpenResult {
  bool ok = false;
  SocketId id = 0;      // when ok
  std::string error;    // one line, when !ok
  SocketAddress local;  // where it is bound (listen/udp with port 0: the port chosen)
};

// Something a host socket did, delivered at a loop boundary.
struct SocketEvent {
  enum class Kind : u8 {
    accepted,        // `socket` (listening) accepted `accepted` from `peer`
    connected,       // a tcp_connect completed
    connect_failed,  // it did not (`error`); the socket is dead, close it
    data,            // stream bytes
    datagram,        // one datagram from `peer`
    writable,        // a send that accepted less than it was given can go on
    eof,             // the peer shut its sending side; sends may still work
    error,           // the connection broke (`error`); the socket is dead, close it
  };
  Kind kind = Kind::data;
  SocketId socket = 0;
  SocketId accepted = 0;
  SocketAddress peer;
  std::vector<u8> bytes;
  std::string error;
};
const char* socket_event_kind_name(SocketEvent::Kind kind);

// Receives asynchronous host inputs at loop boundaries.
class InputSink {
 public:
  virtual ~InputSink() = default;
  virtual void deliver_input(ChannelId channel, std::span<const u8> bytes) = 0;
  virtual void deliver_socket_event(const SocketEvent& event) { (void)event; }
};

// The only door to the outside (DESIGN.md, determinism rule 3). Live mode
// performs requests; record mode performs them and journals each result
// stamped with the instruction count; replay performs none and returns the
// journaled result at the same instruction count. Outputs are checked
// against the journal's digests in replay.
//
// The machine loop calls, in this order and identically in every mode:
//   run CPU up to next_stop_icount() -> timers -> boundary()
//   and when halted with nothing pending: idle() -> advance clock -> timers
//   -> boundary().
class HostIO {
 public:
  virtual ~HostIO() = default;

  // Events are stamped with clock->icount(); checkpoints use the hasher.
  virtual void attach(const VirtualClock* clock, std::function<u64()> state_hasher) = 0;

  // -- Synchronous requests, answered at once.
  // Host wall clock, ns since the Unix epoch (UTC).
  virtual i64 host_time_ns() = 0;
  virtual HostFile read_file(const std::string& path) = 0;
  // Reads `name`, a client-supplied relative path (a TFTP filename), inside
  // the directory `root`. Refused (ok false, refused true): absolute
  // names, any ".." component, a real location (symlinks resolved) outside
  // root's real location, directories and other non-regular files, files
  // over kMaxHostFileUnder. Journaled with the contents, whatever
  // set_embed_files says, so a replay needs neither the file nor the root.
  virtual HostFile read_file_under(const std::string& root, const std::string& name) = 0;
  virtual ChannelId open_console(const ConsoleSpec& spec) = 0;
  virtual void console_write(ChannelId channel, std::span<const u8> bytes) = 0;

  // -- Host sockets (backends of `-net socket`, the user-mode NAT). Every
  // call is journaled; replay opens nothing and answers from the journal,
  // and checks that the machine sends the same bytes in the same order.
  virtual SocketOpenResult socket_open(const SocketSpec& spec) = 0;
  // Stream sockets: returns how many leading bytes the host took (possibly
  // fewer than given; a `writable` event follows when more fit). Multicast
  // sockets: the datagram goes to the group; returns its size or 0 when the
  // host dropped it. Dead or unknown sockets take nothing.
  virtual size_t socket_send(SocketId socket, std::span<const u8> bytes) = 0;
  // UDP: one datagram to `to`; returns its size or 0 when dropped.
  virtual size_t socket_send_to(SocketId socket, const SocketAddress& to, std::span<const u8> bytes) = 0;
  // Stops (or resumes) reading a socket, so a slow guest applies back
  // pressure instead of reel buffering without bound.
  virtual void socket_pause(SocketId socket, bool paused) = 0;
  // TCP: shut down the sending side (FIN). The socket still receives.
  virtual void socket_shutdown(SocketId socket) = 0;
  // Releases the socket; no events for it follow.
  virtual void socket_close(SocketId socket) = 0;

  // -- Loop integration.
  // The instruction count at which the loop must next stop and call
  // boundary() (a journaled event, a checkpoint, a host poll). kNever if
  // none.
  virtual u64 next_stop_icount() = 0;
  // Delivers inputs due at the current instruction count, writes or checks
  // output digests and checkpoints. Returns false when the run must end
  // here (replay: the recording ended at this instruction count, or the
  // journal of an interrupted recording has no more events).
  virtual bool boundary(InputSink& sink) = 0;
  // The CPU is halted with no interrupt pending. deadline_ns is the next
  // timer deadline. Returns the virtual time to resume at (>= now), or
  // nullopt when nothing can ever wake the guest. Inputs are not delivered
  // here; the boundary() that follows delivers them.
  virtual std::optional<u64> idle(std::optional<u64> deadline_ns) = 0;
  // The run ended. Record writes the end event; replay checks it and may
  // throw ReplayDivergence.
  virtual void finish(const RunEnd& end) = 0;
};

}  // namespace reel
