#include "replay/live_sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace reel {

namespace {

// Per socket and poll: enough to keep a fast peer moving, small enough that
// one chatty socket cannot starve the others or the guest.
constexpr size_t kStreamReadSize = 65536;
constexpr int kMaxDatagramsPerPoll = 64;
constexpr int kMaxAcceptsPerPoll = 16;

std::string errno_text(int err) { return std::strerror(err); }

SocketAddress from_sockaddr(const sockaddr_in& sa) {
  return SocketAddress{ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)};
}
sockaddr_in to_sockaddr(const SocketAddress& a) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(a.ip);
  sa.sin_port = htons(a.port);
  return sa;
}

// IPv4 only, like QEMU's -net socket. Empty means any address.
bool resolve(const std::string& host, u32& ip, std::string& error) {
  if (host.empty()) {
    ip = INADDR_ANY;
    return true;
  }
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) == 1) {
    ip = ntohl(a.s_addr);
    return true;
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res) {
    error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return false;
  }
  ip = ntohl(reinterpret_cast<const sockaddr_in*>(res->ai_addr)->sin_addr.s_addr);
  freeaddrinfo(res);
  return true;
}

int new_socket(int type) { return ::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

SocketAddress local_address(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return {};
  return from_sockaddr(sa);
}

}  // namespace

LiveSockets::LiveSockets() = default;

LiveSockets::~LiveSockets() {
  for (auto& [id, s] : m_sockets) {
    if (s.fd >= 0) ::close(s.fd);
  }
}

SocketId LiveSockets::adopt(int fd, SocketSpec::Kind kind, State state) {
  m_readiness_valid = false;
  const SocketId id = m_next_id++;
  Socket s;
  s.fd = fd;
  s.kind = kind;
  s.state = state;
  m_sockets[id] = s;
  return id;
}

SocketOpenResult LiveSockets::open(const SocketSpec& spec) {
  SocketOpenResult r;
  u32 ip = 0;
  if (!resolve(spec.host, ip, r.error)) return r;
  const SocketAddress target{ip, spec.port};
  const sockaddr_in sa = to_sockaddr(target);
  const int one = 1;
  int fd = -1;
  auto fail = [&](const std::string& what) {
    r.error = what + " " + format_socket_address(target) + ": " + errno_text(errno);
    if (fd >= 0) ::close(fd);
    return r;
  };
  switch (spec.kind) {
    case SocketSpec::Kind::tcp_listen: {
      fd = new_socket(SOCK_STREAM);
      if (fd < 0) return fail("cannot create a socket for");
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) return fail("cannot bind");
      if (::listen(fd, 16) != 0) return fail("cannot listen on");
      r.local = local_address(fd);
      r.id = adopt(fd, spec.kind, State::open);
      break;
    }
    case SocketSpec::Kind::tcp_connect: {
      fd = new_socket(SOCK_STREAM);
      if (fd < 0) return fail("cannot create a socket for");
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
      // Even an immediate answer is reported as an event at the next poll,
      // so the machine sees connects complete the same way every time.
      if (rc != 0 && errno != EINPROGRESS) return fail("cannot connect to");
      r.local = local_address(fd);
      r.id = adopt(fd, spec.kind, State::connecting);
      break;
    }
    case SocketSpec::Kind::udp: {
      fd = new_socket(SOCK_DGRAM);
      if (fd < 0) return fail("cannot create a socket for");
      if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) return fail("cannot bind");
      r.local = local_address(fd);
      r.id = adopt(fd, spec.kind, State::open);
      break;
    }
    case SocketSpec::Kind::udp_multicast: {
      if ((ip >> 28) != 0xe) {
        r.error = format_socket_address(target) + " is not a multicast address";
        return r;
      }
      u32 local_ip = INADDR_ANY;
      if (!resolve(spec.local_host, local_ip, r.error)) return r;
      fd = new_socket(SOCK_DGRAM);
      if (fd < 0) return fail("cannot create a socket for");
      // Several reel (or QEMU) processes on one host share the group port.
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) return fail("cannot bind");
      ip_mreq mreq{};
      mreq.imr_multiaddr.s_addr = htonl(ip);
      mreq.imr_interface.s_addr = htonl(local_ip);
      if (::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0)
        return fail("cannot join multicast group");
      const unsigned char loop = 1;
      if (::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0)
        return fail("cannot enable multicast loopback on");
      if (local_ip != INADDR_ANY) {
        in_addr iface{};
        iface.s_addr = htonl(local_ip);
        if (::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface) != 0)
          return fail("cannot choose the multicast interface for");
      }
      r.local = local_address(fd);
      r.id = adopt(fd, spec.kind, State::open);
      m_sockets[r.id].group = target;
      break;
    }
    case SocketSpec::Kind::icmp_echo: {
      // EACCES here means ping_group_range leaves us out; the caller counts it.
      fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
      if (fd < 0) return fail("cannot create a ping socket for");
      if (!spec.host.empty() && ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
        return fail("cannot bind");
      r.local = local_address(fd);
      r.id = adopt(fd, spec.kind, State::open);
      break;
    }
  }
  r.ok = true;
  return r;
}

size_t LiveSockets::send(SocketId id, std::span<const u8> bytes) {
  auto it = m_sockets.find(id);
  if (it == m_sockets.end() || bytes.empty()) return 0;
  Socket& s = it->second;
  if (s.state != State::open) return 0;
  if (s.kind == SocketSpec::Kind::udp_multicast) return send_to(id, s.group, bytes);
  if (s.kind != SocketSpec::Kind::tcp_connect) return 0;  // listening and unconnected UDP sockets
  ssize_t n;
  do {
    n = ::send(s.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s.want_write = true;
      return 0;
    }
    s.pending_error = errno_text(errno);
    return 0;
  }
  if (static_cast<size_t>(n) < bytes.size()) s.want_write = true;
  return static_cast<size_t>(n);
}

size_t LiveSockets::send_to(SocketId id, const SocketAddress& to, std::span<const u8> bytes) {
  auto it = m_sockets.find(id);
  if (it == m_sockets.end()) return 0;
  Socket& s = it->second;
  if (s.state != State::open ||
      (s.kind != SocketSpec::Kind::udp && s.kind != SocketSpec::Kind::udp_multicast &&
       s.kind != SocketSpec::Kind::icmp_echo)) {
    return 0;
  }
  const sockaddr_in sa = to_sockaddr(to);
  ssize_t n;
  do {
    n = ::sendto(s.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  } while (n < 0 && errno == EINTR);
  // A full send buffer or an ICMP error from an earlier datagram: UDP may
  // lose datagrams, so this one is dropped.
  return n < 0 ? 0 : static_cast<size_t>(n);
}

void LiveSockets::pause(SocketId id, bool paused) {
  auto it = m_sockets.find(id);
  if (it != m_sockets.end()) it->second.paused = paused;
}

void LiveSockets::shutdown(SocketId id) {
  m_readiness_valid = false;
  auto it = m_sockets.find(id);
  if (it != m_sockets.end() && it->second.state == State::open) ::shutdown(it->second.fd, SHUT_WR);
}

void LiveSockets::close(SocketId id) {
  m_readiness_valid = false;
  auto it = m_sockets.find(id);
  if (it == m_sockets.end()) return;
  if (it->second.fd >= 0) ::close(it->second.fd);
  m_sockets.erase(it);
}

short LiveSockets::wanted_events(const Socket& s) const {
  if (s.state == State::dead) return 0;
  if (s.state == State::connecting) return POLLOUT;
  short ev = 0;
  if (!s.paused && !s.read_eof) ev |= POLLIN;
  if (s.want_write) ev |= POLLOUT;
  return ev;
}

bool LiveSockets::has_pending() const {
  for (const auto& [id, s] : m_sockets) {
    if (!s.pending_error.empty()) return true;
  }
  return false;
}

void LiveSockets::set_readiness(std::span<const pollfd> fds) {
  m_readiness.assign(fds.begin(), fds.end());
  m_readiness_valid = true;
}

void LiveSockets::recycle(std::vector<u8>&& bytes) {
  if (bytes.capacity() >= kStreamReadSize && bytes.capacity() > m_spare.capacity())
    m_spare = std::move(bytes);
}

void LiveSockets::add_pollfds(std::vector<pollfd>& fds) const {
  for (const auto& [id, s] : m_sockets) {
    const short ev = wanted_events(s);
    if (ev) fds.push_back(pollfd{s.fd, ev, 0});
  }
}

void LiveSockets::poll(std::vector<SocketEvent>& out) {
  std::vector<pollfd> fds;
  std::vector<SocketId> ids;
  for (auto& [id, s] : m_sockets) {
    if (!s.pending_error.empty()) continue;
    const short ev = wanted_events(s);
    if (!ev) continue;
    fds.push_back(pollfd{s.fd, ev, 0});
    ids.push_back(id);
  }
  const bool saw =
      m_readiness_valid && m_readiness.size() == fds.size() &&
      std::equal(fds.begin(), fds.end(), m_readiness.begin(),
                 [](const pollfd& a, const pollfd& b) { return a.fd == b.fd && a.events == b.events; });
  m_readiness_valid = false;
  if (saw) {
    for (size_t i = 0; i < fds.size(); ++i) fds[i].revents = m_readiness[i].revents;
  } else if (!fds.empty()) {
    int r;
    do {
      r = ::poll(fds.data(), fds.size(), 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) fds.clear();
  }
  // Sockets accepted below join the map; walk a copy of the ids so they
  // are first polled next time.
  size_t k = 0;
  std::vector<SocketId> all;
  for (const auto& [id, s] : m_sockets) all.push_back(id);
  for (SocketId id : all) {
    auto it = m_sockets.find(id);
    if (it == m_sockets.end()) continue;
    Socket& s = it->second;
    if (!s.pending_error.empty()) {
      SocketEvent e;
      e.kind = SocketEvent::Kind::error;
      e.socket = id;
      e.error = std::move(s.pending_error);
      s.pending_error.clear();
      s.state = State::dead;
      out.push_back(std::move(e));
      continue;
    }
    while (k < ids.size() && ids[k] < id) ++k;
    if (k < ids.size() && ids[k] == id && fds[k].revents) poll_one(id, s, fds[k].revents, out);
  }
}

void LiveSockets::poll_one(SocketId id, Socket& s, short revents, std::vector<SocketEvent>& out) {
  auto event = [&](SocketEvent::Kind kind) {
    SocketEvent e;
    e.kind = kind;
    e.socket = id;
    return e;
  };
  if (s.state == State::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0 && (revents & POLLOUT)) {
      s.state = State::open;
      out.push_back(event(SocketEvent::Kind::connected));
    } else {
      s.state = State::dead;
      SocketEvent e = event(SocketEvent::Kind::connect_failed);
      e.error = errno_text(err ? err : ECONNREFUSED);
      out.push_back(std::move(e));
    }
    return;
  }
  // The read buffer is made at the first read: most runs open no socket.
  if (m_buffer.size() < kStreamReadSize) m_buffer.resize(kStreamReadSize);
  switch (s.kind) {
    case SocketSpec::Kind::tcp_listen: {
      for (int i = 0; i < kMaxAcceptsPerPoll; ++i) {
        sockaddr_in sa{};
        socklen_t len = sizeof sa;
        const int fd = ::accept4(s.fd, reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;  // EAGAIN, or a connection that died in the queue
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        // The accepted socket behaves like a connected one.
        SocketEvent e = event(SocketEvent::Kind::accepted);
        e.accepted = adopt(fd, SocketSpec::Kind::tcp_connect, State::open);
        e.peer = from_sockaddr(sa);
        out.push_back(std::move(e));
      }
      return;
    }
    case SocketSpec::Kind::tcp_connect: {
      if (revents & POLLOUT) {
        s.want_write = false;
        out.push_back(event(SocketEvent::Kind::writable));
      }
      if (!(revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t n;
      do {
        n = ::recv(s.fd, m_buffer.data(), m_buffer.size(), MSG_DONTWAIT);
      } while (n < 0 && errno == EINTR);
      if (n > 0) {
        SocketEvent e = event(SocketEvent::Kind::data);
        if (static_cast<size_t>(n) >= m_buffer.size() / 2) {
          // A big read hands the buffer itself over (a bulk transfer would
          // otherwise copy every byte once more) and takes a fresh one.
          m_buffer.resize(static_cast<size_t>(n));
          e.bytes = std::move(m_buffer);
          // The next read resizes it: a recycled buffer is zeroed only
          // past its old size.
          m_buffer = std::exchange(m_spare, {});
        } else {
          e.bytes.assign(m_buffer.begin(), m_buffer.begin() + n);
        }
        out.push_back(std::move(e));
      } else if (n == 0) {
        s.read_eof = true;
        out.push_back(event(SocketEvent::Kind::eof));
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        s.state = State::dead;
        SocketEvent e = event(SocketEvent::Kind::error);
        e.error = errno_text(errno);
        out.push_back(std::move(e));
      }
      return;
    }
    case SocketSpec::Kind::udp:
    case SocketSpec::Kind::udp_multicast:
    case SocketSpec::Kind::icmp_echo: {
      for (int i = 0; i < kMaxDatagramsPerPoll; ++i) {
        sockaddr_in sa{};
        socklen_t len = sizeof sa;
        const ssize_t n = ::recvfrom(s.fd, m_buffer.data(), m_buffer.size(), MSG_DONTWAIT,
                                     reinterpret_cast<sockaddr*>(&sa), &len);
        if (n < 0) break;  // EAGAIN, or an ICMP error for an earlier send: not fatal for UDP
        SocketEvent e = event(SocketEvent::Kind::datagram);
        e.peer = from_sockaddr(sa);
        e.bytes.assign(m_buffer.begin(), m_buffer.begin() + n);
        out.push_back(std::move(e));
      }
      return;
    }
  }
}

}  // namespace reel
