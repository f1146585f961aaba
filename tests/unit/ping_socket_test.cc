// Host ping sockets for real: LiveSockets' icmp_echo kind and the ping NAT
// over a LiveHostIO, pinging 127.0.0.1. Ping sockets need
// net.ipv4.ping_group_range to include our group, which hosts often do
// not; so each test runs in a child process that moves into a network
// namespace of its own (we are root; else a user namespace too), brings lo
// up and sets the range there. The host's own settings are never touched.
// A host where that is impossible skips with the reason.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "core/machine.h"
#include "netstack/gateway_link.h"
#include "netstack/ping_nat.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "replay/journal.h"
#include "replay/live_host_io.h"
#include "replay/live_sockets.h"

namespace reel {
namespace {

constexpr int kSkip = 77;

// The child's verdict travels back through a pipe: a status and a line.
struct ChildResult {
  int status = -1;
  std::string message;
};

bool write_file(const char* path, const std::string& text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// In the child: a network namespace with lo up and ping sockets allowed
// for `range` ("0 2147483647": everyone; "1 0": nobody). Returns an empty
// string or why not.
std::string enter_namespace(const std::string& range) {
  if (::unshare(CLONE_NEWNET) != 0) {
    // Not root: a user namespace makes us root of a new network namespace.
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
      return std::string("cannot create a network namespace: ") + std::strerror(errno);
    write_file("/proc/self/setgroups", "deny");
    write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
    write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
  }
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("no socket for ioctl: ") + std::strerror(errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool up = ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  up = up && ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  const int err = errno;
  ::close(fd);
  if (!up) return std::string("cannot bring lo up: ") + std::strerror(err);
  if (!write_file("/proc/sys/net/ipv4/ping_group_range", range))
    return std::string("cannot write ping_group_range: ") + std::strerror(errno);
  return {};
}

// Runs `body` in a child inside a fresh namespace. The body returns an
// empty string on success or what went wrong.
ChildResult in_child(const std::string& range, const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {-1, "pipe failed"};
  const pid_t pid = ::fork();
  if (pid < 0) return {-1, "fork failed"};
  if (pid == 0) {
    ::close(fds[0]);
    int status = 0;
    std::string message = enter_namespace(range);
    if (!message.empty()) {
      status = kSkip;
    } else {
      message = body();
      status = message.empty() ? 0 : 1;
    }
    (void)!::write(fds[1], message.data(), message.size());
    ::_exit(status);
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.message.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return r;
}

// Runs `body` in a namespace child; skips the test when no namespace can
// be had, fails it with the child's message otherwise.
void run_in_namespace(const std::string& range, const std::function<std::string()>& body) {
  const ChildResult r = in_child(range, body);
  if (r.status == kSkip) GTEST_SKIP() << r.message;
  EXPECT_EQ(r.status, 0) << r.message;
}

std::vector<u8> echo_request(u16 id, u16 seq, std::string_view data) {
  std::vector<u8> out(wire::kIcmpHeaderSize + data.size());
  const std::vector<u8> d(data.begin(), data.end());
  wire::build_icmp_echo(out, wire::IcmpType::echo_request, id, seq, d);
  return out;
}

TEST(PingSocket, LiveSocketsEchoToLoopback) {
  run_in_namespace("0 2147483647", []() -> std::string {
    LiveSockets s;
    const SocketOpenResult o = s.open({SocketSpec::Kind::icmp_echo, "", 0, ""});
    if (!o.ok) return "open failed: " + o.error;
    const std::vector<u8> req = echo_request(0x1234, 42, "reel ping payload");
    if (s.send_to(o.id, {0x7f000001, 0}, req) != req.size()) return "send_to took nothing";
    std::vector<SocketEvent> events;
    for (int i = 0; i < 2000 && events.empty(); ++i) {
      s.poll(events);
      if (events.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (events.size() != 1) return "expected one event, got " + std::to_string(events.size());
    const SocketEvent& e = events[0];
    if (e.kind != SocketEvent::Kind::datagram)
      return std::string("not a datagram: ") + socket_event_kind_name(e.kind);
    if (e.peer.ip != 0x7f000001) return "reply from " + format_socket_address(e.peer);
    const auto m = wire::IcmpMessage::parse(e.bytes);
    if (!m) return "reply does not parse: " + std::string(to_string(m.error));
    if (m->type() != 0) return "reply type " + std::to_string(m->type());
    if (m->sequence() != 42) return "reply sequence " + std::to_string(m->sequence());
    const std::string body(m->body().begin(), m->body().end());
    if (body != "reel ping payload") return "reply data " + body;
    s.close(o.id);
    return {};
  });
}

TEST(PingSocket, RefusedWhenTheGroupRangeExcludesUs) {
  run_in_namespace("1 0", []() -> std::string {
    LiveSockets s;
    const SocketOpenResult o = s.open({SocketSpec::Kind::icmp_echo, "", 0, ""});
    if (o.ok) return "a ping socket opened although ping_group_range is \"1 0\"";
    if (o.error.find("ping socket") == std::string::npos) return "unclear error: " + o.error;
    return {};
  });
}

// Record and replay carry the new kind: a ping socket opened in record is
// opened (from the journal) as a ping socket in replay, and a kind past the
// last one is refused with a message rather than replayed as garbage.
TEST(PingSocket, JournalCarriesTheIcmpEchoKind) {
  SocketOpenRecord rec;
  rec.spec.kind = SocketSpec::Kind::icmp_echo;
  rec.result.ok = true;
  rec.result.id = 3;
  JournalEvent e;
  e.kind = EventKind::socket_open;
  e.payload = encode_socket_open(rec);
  EXPECT_EQ(e.payload.at(0), 4);  // the kind byte: after udp_multicast
  const SocketOpenRecord back = decode_socket_open(e, "j");
  EXPECT_EQ(back.spec.kind, SocketSpec::Kind::icmp_echo);
  EXPECT_TRUE(back.result.ok);
  EXPECT_EQ(back.result.id, 3u);
  e.payload.at(0) = 5;
  try {
    decode_socket_open(e, "j");
    FAIL() << "kind 5 decoded";
  } catch (const std::exception& ex) {
    EXPECT_NE(std::string(ex.what()).find("unknown socket kind 5"), std::string::npos) << ex.what();
  }
}

// A gateway stand-in: replies are collected, 10.0.2.2 is the host's loopback.
class LoopbackLink : public GatewayLink {
 public:
  explicit LoopbackLink(Machine& machine) : m_machine(machine) {}
  Machine& machine() override { return m_machine; }
  const UserNetConfig& config() const override { return m_config; }
  u64 now_ns() const override { return 0; }
  bool send_to_guest(const GatewayDatagram& d, std::span<const u8> payload) override {
    sent.push_back(d);
    payloads.emplace_back(payload.begin(), payload.end());
    return true;
  }
  void send_icmp_error(std::span<const u8>, u8, u8) override {}
  void wake_at(u64) override {}
  std::optional<HostTarget> host_target(u32 destination, u16 port) override {
    if (destination == m_config.host) return HostTarget{"127.0.0.1", port};
    return std::nullopt;
  }
  u32 guest_visible_source(u32 host_ip) const override {
    return (host_ip >> 24) == 127 ? m_config.host : host_ip;
  }
  void log(const std::string& line) override { logs.push_back(line); }

  std::vector<GatewayDatagram> sent;
  std::vector<std::vector<u8>> payloads;
  std::vector<std::string> logs;

 private:
  Machine& m_machine;
  UserNetConfig m_config;
};

std::string ping_through_nat(bool allowed) {
  LiveHostIO::Options options;
  options.pacing = false;
  options.input_fd = -1;
  LiveHostIO host(options);
  MachineConfig mc;
  mc.ram_bytes = 1u << 20;
  Machine machine(mc, host);
  LoopbackLink link(machine);
  PingNat nat(link);
  const u32 guest = 0x0a00020f;
  const std::vector<u8> req = echo_request(0xabcd, 9, "through the NAT");
  std::vector<u8> ip(20 + req.size());
  wire::Ipv4Fields f;
  f.source = guest;
  f.destination = 0x0a000202;
  f.protocol = static_cast<u8>(wire::IpProtocol::icmp);
  wire::build_ipv4(ip, f, req);
  const auto packet = wire::Ipv4Packet::parse(ip);
  const auto icmp = wire::IcmpMessage::parse(packet->payload());
  if (!icmp) return "bad test request";
  nat.guest_echo(*packet, *icmp);
  if (!allowed) {
    if (nat.counters().dropped_no_ping_socket != 1) return "refusal not counted";
    if (link.logs.size() != 1) return "refusal not logged";
    return {};
  }
  if (nat.counters().requests_out != 1) return "request not sent";
  for (int i = 0; i < 2000 && link.sent.empty(); ++i) {
    host.boundary(machine);
    if (link.sent.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (link.sent.size() != 1) return "no reply reached the guest";
  if (link.sent[0].source != 0x0a000202 || link.sent[0].destination != guest) return "reply addresses wrong";
  const auto reply = wire::IcmpMessage::parse(link.payloads[0]);
  if (!reply) return "reply to the guest does not parse";
  if (reply->type() != 0 || reply->identifier() != 0xabcd || reply->sequence() != 9)
    return "reply header wrong: id " + std::to_string(reply->identifier());
  if (std::string(reply->body().begin(), reply->body().end()) != "through the NAT") return "reply data wrong";
  nat.close_all();
  return {};
}

TEST(PingSocket, PingNatOverLiveHostIO) {
  run_in_namespace("0 2147483647", [] { return ping_through_nat(true); });
}

TEST(PingSocket, PingNatOverLiveHostIOCountsARefusal) {
  run_in_namespace("1 0", [] { return ping_through_nat(false); });
}

}  // namespace
}  // namespace reel
