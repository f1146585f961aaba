#pragma once

#include <poll.h>

#include <map>
#include <span>
#include <vector>

#include "core/host_io.h"

namespace reel {

// The host sockets behind HostIO's socket calls: non-blocking IPv4 TCP,
// UDP and ICMP ping sockets, polled at loop boundaries and while the
// machine idles. With LiveConsoles and LiveHostIO, the only code that
// touches host sockets.
class LiveSockets {
 public:
  LiveSockets();
  ~LiveSockets();
  LiveSockets(const LiveSockets&) = delete;
  LiveSockets& operator=(const LiveSockets&) = delete;

  SocketOpenResult open(const SocketSpec& spec);
  size_t send(SocketId id, std::span<const u8> bytes);
  size_t send_to(SocketId id, const SocketAddress& to, std::span<const u8> bytes);
  void pause(SocketId id, bool paused);
  void shutdown(SocketId id);
  void close(SocketId id);

  // Collects what every socket has to say now, without blocking, in
  // socket-id order.
  void poll(std::vector<SocketEvent>& out);
  // Descriptors an idle wait should watch (what poll() would look at).
  void add_pollfds(std::vector<pollfd>& fds) const;
  // Some socket has an event that needs no waiting (a failed send).
  bool has_pending() const;
  // What an idle wait's poll just saw on the descriptors add_pollfds gave
  // it (in that order). The next poll() takes it instead of polling again,
  // unless a socket was opened, closed or shut down, or wants other events,
  // in between: one poll per wake-up, as in libslirp's loop.
  void set_readiness(std::span<const pollfd> fds);
  // A delivered data event's bytes, given back: the next big read takes
  // this buffer over instead of allocating (and zeroing) a fresh one.
  void recycle(std::vector<u8>&& bytes);

 private:
  enum class State : u8 { connecting, open, dead };
  struct Socket {
    int fd = -1;
    SocketSpec::Kind kind = SocketSpec::Kind::tcp_connect;
    State state = State::open;
    bool paused = false;
    bool read_eof = false;      // the peer shut its side: stop reading
    bool want_write = false;    // a send came up short: report `writable`
    SocketAddress group;        // udp_multicast: where sends go
    std::string pending_error;  // a send failed: reported at the next poll
  };
  short wanted_events(const Socket& s) const;
  void poll_one(SocketId id, Socket& s, short revents, std::vector<SocketEvent>& out);
  SocketId adopt(int fd, SocketSpec::Kind kind, State state);

  std::map<SocketId, Socket> m_sockets;  // by id: deterministic order
  SocketId m_next_id = 0;
  std::vector<u8> m_buffer;
  std::vector<u8> m_spare;  // from recycle(); host memory only, never state
  std::vector<pollfd> m_readiness;
  bool m_readiness_valid = false;
};

}  // namespace reel
