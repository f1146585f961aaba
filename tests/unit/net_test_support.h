#pragma once

// Helpers shared by the network scenario tests (under QEMU and under reel):
// free loopback ports, waiting for a listener, the multicast probe, and
// line matching on guest output.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/reel_process.h"

namespace reel::test {

using std::chrono::milliseconds;

inline std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

// The lines of `want` appear in `out` in this order (others may sit between).
inline ::testing::AssertionResult has_lines_in_order(const std::string& out,
                                                     const std::vector<std::string>& want) {
  const std::vector<std::string> got = lines_of(out);
  size_t at = 0;
  for (const auto& line : want) {
    while (at < got.size() && got[at] != line) ++at;
    if (at == got.size())
      return ::testing::AssertionFailure() << "missing (or out of order): '" << line << "'";
    ++at;
  }
  return ::testing::AssertionSuccess();
}

// A port nobody listens on right now: the kernel's pick for port 0.
inline int free_port(int type) {
  const int fd = socket(AF_INET, type, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

// Whether something listens on 127.0.0.1:port (read from /proc/net/tcp, so
// the listener's one connection is not used up by probing it).
inline bool listening(int port) {
  std::ifstream tcp("/proc/net/tcp");
  char local[32];
  std::snprintf(local, sizeof local, "0100007F:%04X", port);
  for (std::string line; std::getline(tcp, line);) {
    std::stringstream fields(line);
    std::string slot, address, remote, state;
    fields >> slot >> address >> remote >> state;
    if (address == local && state == "0A") return true;
  }
  return false;
}

inline bool wait_listening(int port, const BackgroundProcess& p) {
  if (access("/proc/net/tcp", R_OK) != 0) {
    std::this_thread::sleep_for(milliseconds(1500));
    return true;
  }
  for (int i = 0; i < 300; ++i) {
    if (listening(port)) return true;
    if (p.pid > 0 && waitpid(p.pid, nullptr, WNOHANG) != 0) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

// Whether a datagram sent to 230.0.0.1 through 127.0.0.1 comes back to a
// member of the group on 127.0.0.1, as QEMU's mcast backend needs.
inline bool multicast_loops_back(int port) {
  const int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
  bool ok = false;
  if (rx >= 0 && tx >= 0) {
    const int one = 1;
    setsockopt(rx, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in group{};
    group.sin_family = AF_INET;
    group.sin_addr.s_addr = inet_addr("230.0.0.1");
    group.sin_port = htons(static_cast<uint16_t>(port));
    ip_mreq mreq{};
    mreq.imr_multiaddr.s_addr = inet_addr("230.0.0.1");
    mreq.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
    in_addr local{};
    local.s_addr = htonl(INADDR_LOOPBACK);
    const unsigned char loop = 1;
    if (bind(rx, reinterpret_cast<sockaddr*>(&group), sizeof group) == 0 &&
        setsockopt(rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) == 0 &&
        setsockopt(tx, IPPROTO_IP, IP_MULTICAST_IF, &local, sizeof local) == 0 &&
        setsockopt(tx, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) == 0 &&
        sendto(tx, "reel", 4, 0, reinterpret_cast<sockaddr*>(&group), sizeof group) == 4) {
      pollfd pfd{rx, POLLIN, 0};
      char buf[8];
      ok = poll(&pfd, 1, 1000) == 1 && recv(rx, buf, sizeof buf, 0) == 4;
    }
  }
  if (rx >= 0) close(rx);
  if (tx >= 0) close(tx);
  return ok;
}

inline std::string mac(int n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "52:54:00:00:00:%02x", n);
  return buf;
}

inline std::string describe(const ProcessResult& r) { return "stdout:\n" + r.out + "stderr:\n" + r.err; }

// The lines a successful netpeer prints about pinging one peer.
inline std::vector<std::string> ping_lines(const std::string& peer, int count) {
  std::vector<std::string> lines;
  for (int seq = 1; seq <= count; ++seq)
    lines.push_back("ping " + peer + " seq=" + std::to_string(seq) + " ok");
  lines.push_back("ping " + peer + ": " + std::to_string(count) + "/" + std::to_string(count) +
                  " replies, rtt ok");
  return lines;
}

}  // namespace reel::test
