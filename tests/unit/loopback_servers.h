#pragma once

// Servers and clients on 127.0.0.1 for the NAT guest tests (tcpecho,
// tcpserve, dnslookup): a TCP echo server, a small authoritative DNS
// server, and a TCP client that streams the shared pattern through a port
// forward and checks the echo. Each server runs on its own thread and
// stops (joins) in its destructor. The pattern and the hash are the
// guests' own (tests/guests/runtime/stream_hash.h), so a line a guest
// prints can be compared with what the host side saw.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/guests/runtime/stream_hash.h"

namespace reel::test {

// The pattern bytes [offset, offset + n) for `seed`.
inline std::vector<uint8_t> pattern_bytes(uint32_t seed, uint64_t offset, size_t n) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = reel_pattern_byte(seed, static_cast<uint32_t>(offset + i));
  return out;
}

// FNV-1a 64 of the first n pattern bytes, as the guests print it.
inline uint64_t pattern_hash(uint32_t seed, uint64_t n) {
  uint64_t h = REEL_FNV64_OFFSET;
  uint8_t chunk[4096];
  for (uint64_t done = 0; done < n;) {
    const uint32_t k = static_cast<uint32_t>(std::min<uint64_t>(sizeof chunk, n - done));
    for (uint32_t i = 0; i < k; ++i) chunk[i] = reel_pattern_byte(seed, static_cast<uint32_t>(done + i));
    h = reel_fnv64_update(h, chunk, k);
    done += k;
  }
  return h;
}

inline std::string hash_hex(uint64_t h) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace detail {

inline sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

inline int bound_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return -1;
  return ntohs(a.sin_port);
}

// Writes all of buf, polling so a stop request is noticed. False on an
// error or a stop.
inline bool write_all(int fd, const uint8_t* buf, size_t n, const std::atomic<bool>& stop) {
  while (n) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, 100) < 0) return false;
    if (stop) return false;
    if (!(p.revents & (POLLOUT | POLLERR | POLLHUP))) continue;
    const ssize_t k = send(fd, buf, n, MSG_NOSIGNAL);
    if (k <= 0) return false;
    buf += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

}  // namespace detail

// Accepts connections on 127.0.0.1 one after another and echoes each
// until its peer closes (then closes its side: FIN both ways). Counts the
// bytes of each connection and hashes them.
class TcpEchoServer {
 public:
  struct Connection {
    uint64_t bytes = 0;
    uint64_t hash = REEL_FNV64_OFFSET;
    bool peer_closed = false;  // EOF seen (not an error or a stop)
    bool reset_sent = false;   // closed with a RST (reset_after)
  };

  // port 0: the kernel picks one (port() says which). reset_after > 0:
  // once a connection has echoed that many bytes it is closed with a RST
  // (SO_LINGER 0) instead of waiting for the peer's FIN.
  explicit TcpEchoServer(int port = 0, uint64_t reset_after = 0) : m_reset_after(reset_after) {
    m_fd = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(m_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = detail::loopback(port);
    if (m_fd < 0 || bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(m_fd, 4) != 0) {
      if (m_fd >= 0) close(m_fd);
      m_fd = -1;
      return;
    }
    m_port = detail::bound_port(m_fd);
    m_thread = std::thread([this] { run(); });
  }
  ~TcpEchoServer() {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
    if (m_fd >= 0) close(m_fd);
  }
  TcpEchoServer(const TcpEchoServer&) = delete;
  TcpEchoServer& operator=(const TcpEchoServer&) = delete;

  bool ok() const { return m_fd >= 0; }
  int port() const { return m_port; }
  std::vector<Connection> connections() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_connections;
  }

 private:
  void run() {
    while (!m_stop) {
      pollfd p{m_fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const int c = accept(m_fd, nullptr, nullptr);
      if (c < 0) continue;
      size_t index;
      {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_connections.emplace_back();
        index = m_connections.size() - 1;
      }
      serve(c, index);
      close(c);
    }
  }

  void serve(int c, size_t index) {
    std::vector<uint8_t> buf(65536);
    while (!m_stop) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = recv(c, buf.data(), buf.size(), 0);
      if (n == 0) {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_connections[index].peer_closed = true;
        return;
      }
      if (n < 0) return;
      {
        std::lock_guard<std::mutex> lock(m_mutex);
        Connection& k = m_connections[index];
        k.bytes += static_cast<uint64_t>(n);
        k.hash = reel_fnv64_update(k.hash, buf.data(), static_cast<uint32_t>(n));
      }
      if (!detail::write_all(c, buf.data(), static_cast<size_t>(n), m_stop)) return;
      std::lock_guard<std::mutex> lock(m_mutex);
      if (m_reset_after && m_connections[index].bytes >= m_reset_after) {
        const linger abort_now{1, 0};
        setsockopt(c, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
        m_connections[index].reset_sent = true;
        return;
      }
    }
  }

  uint64_t m_reset_after = 0;
  int m_fd = -1;
  int m_port = -1;
  std::atomic<bool> m_stop{false};
  mutable std::mutex m_mutex;
  std::vector<Connection> m_connections;
  std::thread m_thread;
};

// An authoritative DNS server on 127.0.0.1 UDP: A questions for names in
// its table get one A record (the name compressed as a pointer to the
// question); other names get NXDOMAIN; anything that is not a plain query
// gets FORMERR. Two names test a client's parser:
//   alias.<zone> -> a CNAME to the table's first name, then its A record
//   loop.<zone>  -> an answer whose name is a compression pointer to itself
//                   (a parser that follows it loops; a careful one rejects
//                   the message)
class DnsServer {
 public:
  struct Query {
    std::string name;
    uint16_t type = 0;
    uint8_t rcode = 0;  // what we answered
  };

  // table: lower-case names without a trailing dot -> host-order IPv4.
  DnsServer(std::map<std::string, uint32_t> table, int port = 0, std::string zone = "reel.test")
      : m_table(std::move(table)), m_zone(std::move(zone)) {
    m_fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a = detail::loopback(port);
    if (m_fd < 0 || bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      if (m_fd >= 0) close(m_fd);
      m_fd = -1;
      return;
    }
    m_port = detail::bound_port(m_fd);
    m_thread = std::thread([this] { run(); });
  }
  ~DnsServer() {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
    if (m_fd >= 0) close(m_fd);
  }
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  bool ok() const { return m_fd >= 0; }
  int port() const { return m_port; }
  std::vector<Query> queries() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_queries;
  }

  // The reply to one query message (empty: no reply at all). Public so a
  // test can check the server itself.
  std::vector<uint8_t> answer(const uint8_t* q, size_t n, Query* seen = nullptr) const {
    if (n < 12) return {};
    std::vector<uint8_t> r(q, q + 12);
    r[2] = 0x84 | (q[2] & 0x01);  // response, authoritative, RD copied
    r[3] = 0;
    auto put16 = [&](size_t at, uint16_t v) {
      r[at] = static_cast<uint8_t>(v >> 8);
      r[at + 1] = static_cast<uint8_t>(v);
    };
    auto formerr = [&] {
      r.resize(12);
      r[3] = 1;
      put16(4, 0);
      put16(6, 0);
      put16(8, 0);
      put16(10, 0);
      if (seen) seen->rcode = 1;
      return r;
    };
    const bool is_query = !(q[2] & 0x80) && ((q[2] >> 3) & 15) == 0;
    const uint16_t qdcount = static_cast<uint16_t>(q[4] << 8 | q[5]);
    if (!is_query || qdcount != 1) return formerr();
    // The question: plain labels only (clients do not compress it).
    std::string name;
    size_t at = 12;
    while (at < n && q[at] != 0) {
      const uint8_t len = q[at];
      if (len > 63 || at + 1 + len >= n) return formerr();
      if (!name.empty()) name += '.';
      for (size_t i = 0; i < len; ++i) name += static_cast<char>(std::tolower(q[at + 1 + i]));
      at += 1u + len;
    }
    if (at + 5 > n) return formerr();
    const size_t qend = at + 5;
    const uint16_t qtype = static_cast<uint16_t>(q[at + 1] << 8 | q[at + 2]);
    if (seen) {
      seen->name = name;
      seen->type = qtype;
    }
    r.assign(q, q + qend);
    r[2] = 0x84 | (q[2] & 0x01);
    r[3] = 0;
    put16(6, 0);
    put16(8, 0);
    put16(10, 0);
    auto add_a = [&](uint16_t name_ptr, uint32_t addr) {
      const uint8_t rr[] = {static_cast<uint8_t>(0xc0 | (name_ptr >> 8)),
                            static_cast<uint8_t>(name_ptr),
                            0,
                            1,
                            0,
                            1,
                            0,
                            0,
                            0,
                            60,
                            0,
                            4,
                            static_cast<uint8_t>(addr >> 24),
                            static_cast<uint8_t>(addr >> 16),
                            static_cast<uint8_t>(addr >> 8),
                            static_cast<uint8_t>(addr)};
      r.insert(r.end(), rr, rr + sizeof rr);
    };
    if (name == "loop." + m_zone && qtype == 1) {
      // One answer whose owner name is a pointer to its own offset.
      const uint16_t self = static_cast<uint16_t>(r.size());
      put16(6, 1);
      add_a(self, 0x7f000001u);
      return r;
    }
    if (name == "alias." + m_zone && qtype == 1 && !m_table.empty()) {
      const auto& target = *m_table.begin();
      put16(6, 2);
      // alias CNAME <target>: owner = pointer to the question name.
      const uint8_t head[] = {0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60};
      r.insert(r.end(), head, head + sizeof head);
      std::vector<uint8_t> encoded;
      size_t start = 0;
      while (start <= target.first.size()) {
        size_t dot = target.first.find('.', start);
        if (dot == std::string::npos) dot = target.first.size();
        encoded.push_back(static_cast<uint8_t>(dot - start));
        encoded.insert(encoded.end(), target.first.begin() + static_cast<long>(start),
                       target.first.begin() + static_cast<long>(dot));
        start = dot + 1;
      }
      encoded.push_back(0);
      r.push_back(static_cast<uint8_t>(encoded.size() >> 8));
      r.push_back(static_cast<uint8_t>(encoded.size()));
      const uint16_t target_at = static_cast<uint16_t>(r.size());
      r.insert(r.end(), encoded.begin(), encoded.end());
      add_a(target_at, target.second);
      return r;
    }
    const auto it = m_table.find(name);
    if (it == m_table.end()) {
      r[3] = 3;  // NXDOMAIN
      if (seen) seen->rcode = 3;
      return r;
    }
    if (qtype == 1) {
      put16(6, 1);
      add_a(12, it->second);
    }
    return r;
  }

 private:
  void run() {
    uint8_t buf[1500];
    while (!m_stop) {
      pollfd p{m_fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n = recvfrom(m_fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) continue;
      Query seen;
      const std::vector<uint8_t> reply = answer(buf, static_cast<size_t>(n), &seen);
      {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_queries.push_back(seen);
      }
      if (!reply.empty())
        sendto(m_fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }

  std::map<std::string, uint32_t> m_table;
  std::string m_zone;
  int m_fd = -1;
  int m_port = -1;
  std::atomic<bool> m_stop{false};
  mutable std::mutex m_mutex;
  std::vector<Query> m_queries;
  std::thread m_thread;
};

// Connects to 127.0.0.1:port, sends `bytes` of the pattern for `seed`
// while reading the echo, half-closes, and reads until the server closes.
// Every echoed byte is checked against the pattern at its offset.
struct EchoClientResult {
  bool connected = false;
  uint64_t sent = 0, received = 0;
  uint64_t hash = REEL_FNV64_OFFSET;  // of the bytes received
  bool matched = true;                // every received byte was the pattern's
  bool eof = false;                   // the server closed after the echo
  std::string error;
};

inline EchoClientResult tcp_echo_client(int port, uint64_t bytes, uint32_t seed,
                                        std::chrono::milliseconds timeout) {
  EchoClientResult r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    r.error = "socket";
    return r;
  }
  sockaddr_in a = detail::loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    close(fd);
    return r;
  }
  r.connected = true;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::vector<uint8_t> out, in(65536);
  size_t out_at = 0;
  bool shut = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (out_at == out.size() && r.sent < bytes) {
      out = pattern_bytes(seed, r.sent, static_cast<size_t>(std::min<uint64_t>(65536, bytes - r.sent)));
      out_at = 0;
    }
    const bool want_write = out_at < out.size();
    if (!want_write && !shut) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (want_write ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 100) < 0) break;
    if (p.revents & POLLIN) {
      const ssize_t n = recv(fd, in.data(), in.size(), 0);
      if (n == 0) {
        r.eof = true;
        break;
      }
      if (n < 0 && errno != EAGAIN) {
        r.error = std::string("recv: ") + std::strerror(errno);
        break;
      }
      for (ssize_t i = 0; i < n; ++i) {
        if (in[static_cast<size_t>(i)] != reel_pattern_byte(seed, static_cast<uint32_t>(r.received + i))) {
          if (r.matched)
            r.error = "echo differs at byte " + std::to_string(r.received + static_cast<uint64_t>(i));
          r.matched = false;
        }
      }
      if (n > 0) {
        r.hash = reel_fnv64_update(r.hash, in.data(), static_cast<uint32_t>(n));
        r.received += static_cast<uint64_t>(n);
      }
    }
    if (want_write && (p.revents & POLLOUT)) {
      const ssize_t n = send(fd, out.data() + out_at, out.size() - out_at, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) {
        r.error = std::string("send: ") + std::strerror(errno);
        break;
      }
      if (n > 0) {
        out_at += static_cast<size_t>(n);
        r.sent += static_cast<uint64_t>(n);
      }
    }
    if ((p.revents & (POLLERR | POLLHUP)) && !(p.revents & POLLIN)) {
      r.error = "connection closed";
      break;
    }
  }
  if (!r.eof && r.error.empty()) r.error = "timeout";
  close(fd);
  return r;
}

}  // namespace reel::test
