// The UDP NAT, DNS forwarding and ping NAT behind `-net user`, with a fake
// gateway (collects what goes to the guest, answers host_target() with
// UserNet's rules) and a FakeHostIO (collects socket calls); host events
// are handed to the machine the way a boundary would.

#include "netstack/udp_nat.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

#include "core/machine.h"
#include "netstack/gateway_link.h"
#include "netstack/ping_nat.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/dns.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/udp.h"
#include "replay/live_host_io.h"
#include "tests/unit/fake_host_io.h"

namespace reel {
namespace {

using namespace reel::wire;

constexpr u32 kGuestIp = 0x0a00020f;   // 10.0.2.15
constexpr u32 kGuest2Ip = 0x0a000210;  // 10.0.2.16
constexpr u32 kHost = 0x0a000202;      // 10.0.2.2
constexpr u32 kDns = 0x0a000203;       // 10.0.2.3
constexpr u32 kLoopback = 0x7f000001;
constexpr u32 kResolver = 0x7f000035;  // 127.0.0.53
constexpr u32 kOutside = 0xc6336407;   // 198.51.100.7
constexpr u64 kSecond = 1'000'000'000ull;

class FakeLink : public GatewayLink {
 public:
  // `live`: a real HostIO instead of the fake one.
  explicit FakeLink(HostIO* live = nullptr) {
    MachineConfig mc;
    mc.ram_bytes = 1u << 20;
    m_machine = std::make_unique<Machine>(mc, live ? *live : static_cast<HostIO&>(host));
  }
  Machine& machine() override { return *m_machine; }
  const UserNetConfig& config() const override { return cfg; }
  u64 now_ns() const override { return now; }
  bool send_to_guest(const GatewayDatagram& d, std::span<const u8> payload) override {
    if (!guest_known) return false;
    to_guest.push_back(ToGuest{d, std::vector<u8>(payload.begin(), payload.end())});
    return true;
  }
  void send_icmp_error(std::span<const u8> original, u8 type, u8 code) override {
    icmp_errors.push_back(IcmpErr{std::vector<u8>(original.begin(), original.end()), type, code});
  }
  void wake_at(u64 deadline_ns) override { wakes.push_back(deadline_ns); }
  // UserNet's rules, with the resolver at 127.0.0.53:53.
  std::optional<HostTarget> host_target(u32 destination, u16 port) override {
    if (destination == cfg.dns) {
      if (port != 53) return std::nullopt;
      return HostTarget{resolver, resolver_port};
    }
    if (cfg.restrict) return std::nullopt;
    if (destination == cfg.host) return HostTarget{"127.0.0.1", port};
    if ((destination & cfg.netmask) == cfg.network) return std::nullopt;
    const SocketAddress a{destination, 0};
    std::string s = format_socket_address(a);
    return HostTarget{s.substr(0, s.rfind(':')), port};
  }
  u32 guest_visible_source(u32 host_ip) const override { return (host_ip >> 24) == 127 ? cfg.host : host_ip; }
  void log(const std::string& line) override { logs.push_back(line); }

  struct ToGuest {
    GatewayDatagram d;
    std::vector<u8> payload;
  };
  struct IcmpErr {
    std::vector<u8> original;
    u8 type;
    u8 code;
  };
  test::FakeHostIO host;
  UserNetConfig cfg;
  std::string resolver = "127.0.0.53";
  u16 resolver_port = 53;
  u64 now = 0;
  bool guest_known = true;
  std::vector<ToGuest> to_guest;
  std::vector<IcmpErr> icmp_errors;
  std::vector<u64> wakes;
  std::vector<std::string> logs;

 private:
  std::unique_ptr<Machine> m_machine;
};

std::vector<u8> bytes_of(std::string_view s) { return std::vector<u8>(s.begin(), s.end()); }

// An IPv4 datagram from the guest carrying UDP, as the gateway hands it on.
std::vector<u8> guest_udp(u32 src, u16 sport, u32 dst, u16 dport, std::span<const u8> payload) {
  std::vector<u8> udp(kUdpHeaderSize + payload.size());
  EXPECT_TRUE(build_udp(udp, src, dst, sport, dport, payload));
  Ipv4Fields f;
  f.source = src;
  f.destination = dst;
  f.protocol = static_cast<u8>(IpProtocol::udp);
  f.identification = 0x4242;
  std::vector<u8> ip(20 + udp.size());
  EXPECT_TRUE(build_ipv4(ip, f, udp));
  return ip;
}

void send_udp(UdpNat& nat, u32 src, u16 sport, u32 dst, u16 dport, std::span<const u8> payload) {
  const std::vector<u8> frame = guest_udp(src, sport, dst, dport, payload);
  const auto ip = Ipv4Packet::parse(frame);
  ASSERT_TRUE(ip);
  const auto udp = UdpDatagram::parse(*ip);
  ASSERT_TRUE(udp);
  nat.guest_datagram(*ip, *udp);
}

void host_datagram(FakeLink& link, SocketId socket, SocketAddress peer, std::vector<u8> bytes) {
  SocketEvent e;
  e.kind = SocketEvent::Kind::datagram;
  e.socket = socket;
  e.peer = peer;
  e.bytes = std::move(bytes);
  link.machine().deliver_socket_event(e);
}

// What the guest got: the UDP datagram checked (checksum included) against its IP addresses.
struct GuestUdp {
  u32 src = 0, dst = 0;
  u16 sport = 0, dport = 0;
  std::vector<u8> payload;
};
GuestUdp guest_got(const FakeLink::ToGuest& t) {
  GuestUdp g;
  EXPECT_EQ(t.d.protocol, static_cast<u8>(IpProtocol::udp));
  const auto udp = UdpDatagram::parse(t.payload, t.d.source, t.d.destination);
  EXPECT_TRUE(udp) << to_string(udp.error);
  if (!udp) return g;
  EXPECT_TRUE(udp->has_checksum());
  g.src = t.d.source;
  g.dst = t.d.destination;
  g.sport = udp->source_port();
  g.dport = udp->destination_port();
  g.payload.assign(udp->payload().begin(), udp->payload().end());
  return g;
}

TEST(UdpNat, FirstDatagramOpensAnAnyAddressSocketAndSendsToTheHost) {
  FakeLink link;
  UdpNat nat(link);
  send_udp(nat, kGuestIp, 5000, kHost, 7777, bytes_of("hello"));
  ASSERT_EQ(link.host.opened.size(), 1u);
  EXPECT_EQ(link.host.opened[0].kind, SocketSpec::Kind::udp);
  EXPECT_EQ(link.host.opened[0].host, "");
  EXPECT_EQ(link.host.opened[0].port, 0);
  ASSERT_EQ(link.host.sent.size(), 1u);
  EXPECT_EQ(link.host.sent[0].socket, 0u);
  EXPECT_EQ(link.host.sent[0].to, (SocketAddress{kLoopback, 7777}));
  EXPECT_EQ(link.host.sent[0].bytes, bytes_of("hello"));
  EXPECT_EQ(nat.counters().datagrams_out, 1u);
  EXPECT_EQ(nat.counters().flows_opened, 1u);
  EXPECT_EQ(nat.flow_count(), 1u);
  const auto f = nat.flow_for(kGuestIp, 5000);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->socket, 0u);
  EXPECT_EQ(f->expires_ns, UdpNat::kIdleNs);
  ASSERT_FALSE(link.wakes.empty());
  EXPECT_EQ(link.wakes.back(), UdpNat::kIdleNs);
}

TEST(UdpNat, OneSocketPerGuestSourceSharedAcrossDestinations) {
  FakeLink link;
  UdpNat nat(link);
  send_udp(nat, kGuestIp, 5000, kHost, 7777, bytes_of("a"));
  send_udp(nat, kGuestIp, 5000, kOutside, 9, bytes_of("b"));
  send_udp(nat, kGuestIp, 5001, kOutside, 9, bytes_of("c"));
  send_udp(nat, kGuest2Ip, 5000, kOutside, 9, bytes_of("d"));
  ASSERT_EQ(link.host.opened.size(), 3u);
  ASSERT_EQ(link.host.sent.size(), 4u);
  EXPECT_EQ(link.host.sent[1].socket, 0u);
  EXPECT_EQ(link.host.sent[1].to, (SocketAddress{kOutside, 9}));
  EXPECT_EQ(link.host.sent[2].socket, 1u);
  EXPECT_EQ(link.host.sent[3].socket, 2u);
  EXPECT_EQ(nat.flow_count(), 3u);
}

TEST(UdpNat, RepliesComeFromTheAddressTheGuestSentTo) {
  FakeLink link;
  UdpNat nat(link);
  send_udp(nat, kGuestIp, 5000, kHost, 7777, bytes_of("ping"));
  send_udp(nat, kGuestIp, 5000, kOutside, 4444, bytes_of("ping2"));
  host_datagram(link, 0, {kLoopback, 7777}, bytes_of("pong"));
  host_datagram(link, 0, {kOutside, 4444}, bytes_of("pong2"));
  ASSERT_EQ(link.to_guest.size(), 2u);
  const GuestUdp a = guest_got(link.to_guest[0]);
  EXPECT_EQ(a.src, kHost);
  EXPECT_EQ(a.sport, 7777);
  EXPECT_EQ(a.dst, kGuestIp);
  EXPECT_EQ(a.dport, 5000);
  EXPECT_EQ(a.payload, bytes_of("pong"));
  const GuestUdp b = guest_got(link.to_guest[1]);
  EXPECT_EQ(b.src, kOutside);
  EXPECT_EQ(b.sport, 4444);
  EXPECT_EQ(b.payload, bytes_of("pong2"));
  EXPECT_EQ(nat.counters().datagrams_in, 2u);
  EXPECT_EQ(nat.counters().unsolicited_datagrams, 0u);
  // Golden bytes of the first: ports, length, then the payload.
  const std::vector<u8>& p = link.to_guest[0].payload;
  ASSERT_EQ(p.size(), 12u);
  EXPECT_EQ(load_be16(&p[0]), 7777);
  EXPECT_EQ(load_be16(&p[2]), 5000);
  EXPECT_EQ(load_be16(&p[4]), 12);
}

TEST(UdpNat, UnsolicitedPeersAreDeliveredAndCanBeAnswered) {
  FakeLink link;
  UdpNat nat(link);
  send_udp(nat, kGuestIp, 5000, kHost, 7777, bytes_of("x"));
  // 127.0.0.2 never got anything: it appears as the gateway, and the
  // guest's answer to that goes back to 127.0.0.2, not 127.0.0.1.
  host_datagram(link, 0, {0x7f000002, 999}, bytes_of("hi"));
  ASSERT_EQ(link.to_guest.size(), 1u);
  const GuestUdp g = guest_got(link.to_guest[0]);
  EXPECT_EQ(g.src, kHost);
  EXPECT_EQ(g.sport, 999);
  EXPECT_EQ(nat.counters().unsolicited_datagrams, 1u);
  send_udp(nat, kGuestIp, 5000, kHost, 999, bytes_of("answer"));
  ASSERT_EQ(link.host.sent.size(), 2u);
  EXPECT_EQ(link.host.sent[1].to, (SocketAddress{0x7f000002, 999}));
  // A foreign address keeps its own.
  host_datagram(link, 0, {kOutside, 53}, bytes_of("z"));
  ASSERT_EQ(link.to_guest.size(), 2u);
  EXPECT_EQ(link.to_guest[1].d.source, kOutside);
}

TEST(UdpNat, DnsQueriesGoToTheResolverAndAnswersComeFromTheDnsAddress) {
  FakeLink link;
  UdpNat nat(link);
  std::vector<u8> query(512);
  const auto n = build_dns_query(query, 0xbeef, "example.com", DnsType::a, DnsRecursion::desired);
  ASSERT_TRUE(n);
  query.resize(*n);
  link.now = 5 * kSecond;
  send_udp(nat, kGuestIp, 40000, kDns, 53, query);
  ASSERT_EQ(link.host.sent.size(), 1u);
  EXPECT_EQ(link.host.sent[0].to, (SocketAddress{kResolver, 53}));
  EXPECT_EQ(link.host.sent[0].bytes, query);
  EXPECT_EQ(nat.counters().dns_queries, 1u);
  EXPECT_EQ(nat.counters().dns_not_a_query, 0u);

  std::vector<u8> answer = query;
  answer[2] |= 0x80;  // QR: a response (enough for the NAT, which does not read it)
  link.now = 6 * kSecond;
  host_datagram(link, 0, {kResolver, 53}, answer);
  ASSERT_EQ(link.to_guest.size(), 1u);
  const GuestUdp g = guest_got(link.to_guest[0]);
  EXPECT_EQ(g.src, kDns);
  EXPECT_EQ(g.sport, 53);
  EXPECT_EQ(g.dst, kGuestIp);
  EXPECT_EQ(g.dport, 40000);
  EXPECT_EQ(g.payload, answer);
  EXPECT_EQ(nat.counters().dns_answers, 1u);
  // Answered DNS flows go quickly.
  EXPECT_EQ(nat.flow_for(kGuestIp, 40000)->expires_ns, 16 * kSecond);
  EXPECT_EQ(link.wakes.back(), 16 * kSecond);
  nat.on_timer(16 * kSecond - 1);
  EXPECT_EQ(nat.flow_count(), 1u);
  nat.on_timer(16 * kSecond);
  EXPECT_EQ(nat.flow_count(), 0u);
  EXPECT_EQ(link.host.closed, std::vector<SocketId>{0});
  EXPECT_EQ(nat.counters().flows_expired, 1u);
}

TEST(UdpNat, NonDnsPayloadsToTheResolverAreForwardedButCounted) {
  FakeLink link;
  UdpNat nat(link);
  send_udp(nat, kGuestIp, 40000, kDns, 53, bytes_of("garbage"));
  ASSERT_EQ(link.host.sent.size(), 1u);
  EXPECT_EQ(link.host.sent[0].bytes, bytes_of("garbage"));
  EXPECT_EQ(nat.counters().dns_queries, 1u);
  EXPECT_EQ(nat.counters().dns_not_a_query, 1u);
}

TEST(UdpNat, TheDnsAddressOnAnotherPortIsPortUnreachable) {
  FakeLink link;
  UdpNat nat(link);
  const std::vector<u8> frame = guest_udp(kGuestIp, 40000, kDns, 54, bytes_of("q"));
  send_udp(nat, kGuestIp, 40000, kDns, 54, bytes_of("q"));
  EXPECT_TRUE(link.host.opened.empty());
  ASSERT_EQ(link.icmp_errors.size(), 1u);
  EXPECT_EQ(link.icmp_errors[0].type, 3);
  EXPECT_EQ(link.icmp_errors[0].code, 3);
  EXPECT_EQ(link.icmp_errors[0].original, frame);
  EXPECT_EQ(nat.counters().port_unreachable_sent, 1u);
}

TEST(UdpNat, DestinationsThatMayNotLeaveAreDropped) {
  FakeLink link;
  UdpNat nat(link);
  send_udp(nat, kGuestIp, 5000, 0x0a000263, 80, bytes_of("x"));  // 10.0.2.99: nobody
  link.cfg.restrict = true;
  send_udp(nat, kGuestIp, 5000, kOutside, 80, bytes_of("x"));
  EXPECT_EQ(nat.counters().dropped_no_target, 2u);
  link.cfg.restrict = false;
  send_udp(nat, kGuestIp, 5000, 0x0a0002ff, 80, bytes_of("x"));  // the network's broadcast
  send_udp(nat, kGuestIp, 5000, 0xe0000001, 80, bytes_of("x"));  // multicast
  send_udp(nat, kGuestIp, 5000, 0xffffffff, 80, bytes_of("x"));
  EXPECT_EQ(nat.counters().dropped_broadcast, 3u);
  send_udp(nat, 0, 68, kOutside, 80, bytes_of("x"));
  EXPECT_EQ(nat.counters().dropped_bad_source, 1u);
  link.resolver = "::1";
  send_udp(nat, kGuestIp, 5000, kDns, 53, bytes_of("x"));
  EXPECT_EQ(nat.counters().dropped_bad_target, 1u);
  EXPECT_TRUE(link.host.opened.empty());
  EXPECT_TRUE(link.host.sent.empty());
  EXPECT_TRUE(link.icmp_errors.empty());
}

TEST(UdpNat, PortZeroIsDroppedOnBothSides) {
  FakeLink link;
  UdpNat nat(link);
  send_udp(nat, kGuestIp, 0, kOutside, 53, bytes_of("x"));
  send_udp(nat, kGuestIp, 5000, kOutside, 0, bytes_of("x"));
  EXPECT_EQ(nat.counters().dropped_source_port_zero, 1u);
  EXPECT_EQ(nat.counters().dropped_destination_port_zero, 1u);
  EXPECT_TRUE(link.host.opened.empty());
  send_udp(nat, kGuestIp, 5000, kOutside, 53, bytes_of("x"));
  host_datagram(link, 0, {kOutside, 0}, bytes_of("from port 0"));
  EXPECT_TRUE(link.to_guest.empty());
  EXPECT_EQ(nat.counters().dropped_peer_port_zero, 1u);
}

TEST(UdpNat, EmptyDatagramsPassBothWays) {
  FakeLink link;
  UdpNat nat(link);
  send_udp(nat, kGuestIp, 5000, kOutside, 7, {});
  ASSERT_EQ(link.host.sent.size(), 1u);
  EXPECT_TRUE(link.host.sent[0].bytes.empty());
  EXPECT_EQ(nat.counters().datagrams_out, 1u);
  host_datagram(link, 0, {kOutside, 7}, {});
  ASSERT_EQ(link.to_guest.size(), 1u);
  EXPECT_EQ(link.to_guest[0].payload.size(), 8u);
}

TEST(UdpNat, IdleFlowsExpireOnVirtualTime) {
  FakeLink link;
  UdpNat nat(link);
  send_udp(nat, kGuestIp, 5000, kOutside, 9, bytes_of("a"));
  EXPECT_EQ(link.wakes, std::vector<u64>{UdpNat::kIdleNs});
  link.now = 100 * kSecond;
  send_udp(nat, kGuestIp, 5000, kOutside, 9, bytes_of("b"));
  // The pending wake is earlier: no new one yet.
  EXPECT_EQ(link.wakes.size(), 1u);
  link.now = UdpNat::kIdleNs;
  nat.on_timer(link.now);
  EXPECT_EQ(nat.flow_count(), 1u);
  ASSERT_EQ(link.wakes.size(), 2u);
  EXPECT_EQ(link.wakes[1], 100 * kSecond + UdpNat::kIdleNs);
  link.now = link.wakes[1];
  nat.on_timer(link.now);
  EXPECT_EQ(nat.flow_count(), 0u);
  EXPECT_EQ(link.host.closed, std::vector<SocketId>{0});
  // Its handler is gone: a late datagram reaches nobody.
  host_datagram(link, 0, {kOutside, 9}, bytes_of("late"));
  EXPECT_TRUE(link.to_guest.empty());
  EXPECT_EQ(link.wakes.size(), 2u);
  // The next datagram from the same source opens a new socket.
  send_udp(nat, kGuestIp, 5000, kOutside, 9, bytes_of("c"));
  EXPECT_EQ(link.host.opened.size(), 2u);
  EXPECT_EQ(nat.flow_for(kGuestIp, 5000)->socket, 1u);
}

TEST(UdpNat, TheFlowLimitEvictsTheLongestIdle) {
  FakeLink link;
  UdpNat nat(link);
  for (std::size_t i = 0; i < UdpNat::kMaxFlows; ++i) {
    link.now = i;
    send_udp(nat, kGuestIp, static_cast<u16>(1000 + i), kOutside, 9, bytes_of("x"));
  }
  // Flow 0 is used again, so flow 1 is the longest idle.
  link.now = 5000;
  send_udp(nat, kGuestIp, 1000, kOutside, 9, bytes_of("x"));
  EXPECT_EQ(nat.flow_count(), UdpNat::kMaxFlows);
  send_udp(nat, kGuestIp, 60000, kOutside, 9, bytes_of("new"));
  EXPECT_EQ(nat.flow_count(), UdpNat::kMaxFlows);
  EXPECT_EQ(nat.counters().flows_evicted, 1u);
  EXPECT_EQ(link.host.closed, std::vector<SocketId>{1});
  EXPECT_FALSE(nat.flow_for(kGuestIp, 1001));
  EXPECT_TRUE(nat.flow_for(kGuestIp, 1000));
  EXPECT_TRUE(nat.flow_for(kGuestIp, 60000));
}

TEST(UdpNat, RefusedSocketsAndHostErrorsAreCounted) {
  FakeLink link;
  UdpNat nat(link);
  link.host.refuse_sockets = true;
  send_udp(nat, kGuestIp, 5000, kOutside, 9, bytes_of("x"));
  EXPECT_EQ(nat.counters().dropped_socket_open, 1u);
  EXPECT_EQ(nat.flow_count(), 0u);
  EXPECT_TRUE(link.host.sent.empty());
  link.host.refuse_sockets = false;
  send_udp(nat, kGuestIp, 5000, kOutside, 9, bytes_of("x"));
  SocketEvent e;
  e.kind = SocketEvent::Kind::error;
  e.socket = 0;
  e.error = "Connection refused";
  link.machine().deliver_socket_event(e);
  EXPECT_EQ(nat.counters().host_errors, 1u);
  EXPECT_EQ(nat.flow_count(), 0u);
  EXPECT_EQ(link.host.closed, std::vector<SocketId>{0});
  ASSERT_EQ(link.logs.size(), 1u);
  EXPECT_NE(link.logs[0].find("10.0.2.15:5000"), std::string::npos) << link.logs[0];
}

TEST(UdpNat, UnknownGuestMacLosesTheDatagram) {
  FakeLink link;
  UdpNat nat(link);
  send_udp(nat, kGuestIp, 5000, kOutside, 9, bytes_of("x"));
  link.guest_known = false;
  host_datagram(link, 0, {kOutside, 9}, bytes_of("y"));
  EXPECT_EQ(nat.counters().dropped_guest_unreachable, 1u);
  EXPECT_EQ(nat.counters().datagrams_in, 0u);
}

TEST(UdpNat, ForwardsDeliverToTheGuestAndCarryItsAnswersBack) {
  FakeLink link;
  UdpNat nat(link);
  // A NAT flow from the forwarded port is replaced by the forward.
  send_udp(nat, kGuestIp, 8080, kOutside, 9, bytes_of("x"));
  nat.add_forward(50, kGuestIp, 8080);
  EXPECT_EQ(link.host.closed, std::vector<SocketId>{0});
  host_datagram(link, 50, {kLoopback, 40000}, bytes_of("request"));
  ASSERT_EQ(link.to_guest.size(), 1u);
  const GuestUdp g = guest_got(link.to_guest[0]);
  EXPECT_EQ(g.src, kHost);
  EXPECT_EQ(g.sport, 40000);
  EXPECT_EQ(g.dst, kGuestIp);
  EXPECT_EQ(g.dport, 8080);
  EXPECT_EQ(g.payload, bytes_of("request"));
  send_udp(nat, kGuestIp, 8080, kHost, 40000, bytes_of("response"));
  ASSERT_EQ(link.host.sent.size(), 2u);
  EXPECT_EQ(link.host.sent[1].socket, 50u);
  EXPECT_EQ(link.host.sent[1].to, (SocketAddress{kLoopback, 40000}));
  EXPECT_EQ(link.host.sent[1].bytes, bytes_of("response"));
  EXPECT_EQ(link.host.opened.size(), 1u);  // only the replaced NAT flow's
  // Forwards never expire and are not closed by the NAT.
  nat.on_timer(1000 * kSecond);
  EXPECT_EQ(nat.flow_count(), 1u);
  const auto f = nat.flow_for(kGuestIp, 8080);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->forward);
  nat.remove_forward(50);
  EXPECT_EQ(nat.flow_count(), 0u);
  EXPECT_EQ(link.host.closed, std::vector<SocketId>{0});
  host_datagram(link, 50, {kLoopback, 40000}, bytes_of("after"));
  EXPECT_EQ(link.to_guest.size(), 1u);
}

TEST(UdpNat, DescribeFlowsListsMappings) {
  FakeLink link;
  UdpNat nat(link);
  send_udp(nat, kGuestIp, 40000, kDns, 53, bytes_of("q"));
  send_udp(nat, kGuestIp, 5000, kOutside, 9, bytes_of("x"));
  link.now = 40 * kSecond;
  const std::vector<std::string> lines = nat.describe_flows();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "udp 10.0.2.15:40000 nat socket 0 10.0.2.3:53=127.0.0.53:53 expires in 200.000s");
  EXPECT_EQ(lines[1], "udp 10.0.2.15:5000 nat socket 1 198.51.100.7:9 expires in 200.000s");
}

std::string json_of(UdpNat& nat) {
  std::ostringstream out;
  {
    JsonOut ar(out);
    nat.serialize(ar);
  }
  return out.str();
}

TEST(UdpNat, StateRoundTripsAndKeepsWorkingAfterALoad) {
  FakeLink link;
  auto nat = std::make_unique<UdpNat>(link);
  send_udp(*nat, kGuestIp, 40000, kDns, 53, bytes_of("q"));
  send_udp(*nat, kGuestIp, 5000, kHost, 7777, bytes_of("x"));
  host_datagram(link, 1, {0x7f000002, 999}, bytes_of("y"));
  std::ostringstream bin;
  {
    BinaryOut ar(bin);
    nat->serialize(ar);
  }
  const std::string before = json_of(*nat);
  EXPECT_NE(before.find("\"guest_port\": 40000"), std::string::npos) << before;

  auto loaded = std::make_unique<UdpNat>(link);
  {
    std::istringstream in(bin.str());
    BinaryIn ar(in);
    loaded->serialize(ar);
  }
  EXPECT_EQ(json_of(*loaded), before);
  nat.reset();
  loaded->rebind_sockets();
  EXPECT_EQ(loaded->flow_count(), 2u);
  EXPECT_EQ(loaded->flow_for(kGuestIp, 5000)->socket, 1u);
  // The reverse mappings survived: resolver answers still come from 10.0.2.3:53.
  link.to_guest.clear();
  host_datagram(link, 0, {kResolver, 53}, bytes_of("a"));
  ASSERT_EQ(link.to_guest.size(), 1u);
  EXPECT_EQ(guest_got(link.to_guest[0]).src, kDns);
  // And the remembered 127.0.0.2 peer.
  send_udp(*loaded, kGuestIp, 5000, kHost, 999, bytes_of("z"));
  EXPECT_EQ(link.host.sent.back().to, (SocketAddress{0x7f000002, 999}));
  EXPECT_EQ(link.host.opened.size(), 2u);
}

TEST(UdpNat, ParseHostAddressTakesOnlyDottedQuads) {
  EXPECT_EQ(UdpNat::parse_host_address("10.0.2.3"), 0x0a000203u);
  EXPECT_EQ(UdpNat::parse_host_address("255.255.255.255"), 0xffffffffu);
  EXPECT_FALSE(UdpNat::parse_host_address(""));
  EXPECT_FALSE(UdpNat::parse_host_address("1.2.3"));
  EXPECT_FALSE(UdpNat::parse_host_address("1.2.3.4.5"));
  EXPECT_FALSE(UdpNat::parse_host_address("1.2.3.256"));
  EXPECT_FALSE(UdpNat::parse_host_address("1.2.3.-4"));
  EXPECT_FALSE(UdpNat::parse_host_address("1.2.3.4x"));
  EXPECT_FALSE(UdpNat::parse_host_address("0001.2.3.4"));
  EXPECT_FALSE(UdpNat::parse_host_address("::1"));
  EXPECT_FALSE(UdpNat::parse_host_address("localhost"));
}

// The whole path on real sockets: a "resolver" on 127.0.0.1 gets the
// query from the NAT's host socket and its answer reaches the guest from
// 10.0.2.3:53.
TEST(UdpNat, DnsThroughLiveSocketsOnLoopback) {
  const int server = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::getsockname(server, reinterpret_cast<sockaddr*>(&sa), &len), 0);

  LiveHostIO::Options options;
  options.pacing = false;
  options.input_fd = -1;
  LiveHostIO live(options);
  FakeLink link(&live);
  link.resolver = "127.0.0.1";
  link.resolver_port = ntohs(sa.sin_port);
  UdpNat nat(link);
  std::vector<u8> query(512);
  const auto n = build_dns_query(query, 0x5151, "reel.test", DnsType::a, DnsRecursion::desired);
  ASSERT_TRUE(n);
  query.resize(*n);
  send_udp(nat, kGuestIp, 33333, kDns, 53, query);
  ASSERT_EQ(nat.counters().datagrams_out, 1u);

  u8 buf[1500];
  sockaddr_in from{};
  socklen_t from_len = sizeof from;
  timeval tv{2, 0};
  ::setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const ssize_t got = ::recvfrom(server, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
  ASSERT_EQ(got, static_cast<ssize_t>(query.size()));
  EXPECT_EQ(std::vector<u8>(buf, buf + got), query);
  buf[2] |= 0x80;
  ASSERT_EQ(::sendto(server, buf, static_cast<size_t>(got), 0, reinterpret_cast<sockaddr*>(&from), from_len),
            got);

  for (int i = 0; i < 2000 && link.to_guest.empty(); ++i) {
    live.boundary(link.machine());
    if (link.to_guest.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(link.to_guest.size(), 1u);
  const GuestUdp g = guest_got(link.to_guest[0]);
  EXPECT_EQ(g.src, kDns);
  EXPECT_EQ(g.sport, 53);
  EXPECT_EQ(g.dport, 33333);
  EXPECT_EQ(g.payload, std::vector<u8>(buf, buf + got));
  EXPECT_EQ(nat.counters().dns_answers, 1u);
  EXPECT_EQ(nat.flow_for(kGuestIp, 33333)->expires_ns, UdpNat::kDnsIdleNs);
  nat.close_all();
  EXPECT_EQ(nat.flow_count(), 0u);
  ::close(server);
}

// ---- PingNat ----

std::vector<u8> guest_echo_ip(u32 src, u32 dst, u16 id, u16 seq, std::span<const u8> data) {
  std::vector<u8> icmp(kIcmpHeaderSize + data.size());
  EXPECT_TRUE(build_icmp_echo(icmp, IcmpType::echo_request, id, seq, data));
  Ipv4Fields f;
  f.source = src;
  f.destination = dst;
  f.protocol = static_cast<u8>(IpProtocol::icmp);
  std::vector<u8> ip(20 + icmp.size());
  EXPECT_TRUE(build_ipv4(ip, f, icmp));
  return ip;
}

void send_ping(PingNat& nat, u32 src, u32 dst, u16 id, u16 seq, std::span<const u8> data) {
  const std::vector<u8> frame = guest_echo_ip(src, dst, id, seq, data);
  const auto ip = Ipv4Packet::parse(frame);
  ASSERT_TRUE(ip);
  const auto icmp = IcmpMessage::parse(ip->payload());
  ASSERT_TRUE(icmp);
  nat.guest_echo(*ip, *icmp);
}

// What a Linux ping socket hands back: the reply with the host's identifier.
std::vector<u8> host_echo_reply(u16 host_id, u16 seq, std::span<const u8> data) {
  std::vector<u8> out(kIcmpHeaderSize + data.size());
  EXPECT_TRUE(build_icmp_echo(out, IcmpType::echo_reply, host_id, seq, data));
  return out;
}

TEST(PingNat, RequestGoesOutThroughAPingSocket) {
  FakeLink link;
  PingNat nat(link);
  const std::vector<u8> data = bytes_of("abcdefgh");
  send_ping(nat, kGuestIp, kOutside, 0x1234, 7, data);
  ASSERT_EQ(link.host.opened.size(), 1u);
  EXPECT_EQ(link.host.opened[0].kind, SocketSpec::Kind::icmp_echo);
  EXPECT_EQ(link.host.opened[0].host, "");
  ASSERT_EQ(link.host.sent.size(), 1u);
  EXPECT_EQ(link.host.sent[0].to, (SocketAddress{kOutside, 0}));
  // The guest's message unchanged (golden header: type 8, code 0, id, seq).
  const std::vector<u8>& request = link.host.sent[0].bytes;
  ASSERT_EQ(request.size(), 16u);
  EXPECT_EQ(request[0], 8);
  EXPECT_EQ(request[1], 0);
  EXPECT_EQ(load_be16(&request[4]), 0x1234);
  EXPECT_EQ(load_be16(&request[6]), 7);
  EXPECT_EQ(std::vector<u8>(request.begin() + 8, request.end()), data);
  EXPECT_TRUE(IcmpMessage::parse(request));
  EXPECT_EQ(nat.counters().requests_out, 1u);
  // Same identifier: same socket; another identifier: another.
  send_ping(nat, kGuestIp, kOutside, 0x1234, 8, data);
  send_ping(nat, kGuestIp, kOutside, 0x1235, 1, data);
  EXPECT_EQ(link.host.opened.size(), 2u);
  EXPECT_EQ(link.host.sent[1].socket, 0u);
  EXPECT_EQ(link.host.sent[2].socket, 1u);
}

TEST(PingNat, ReplyCarriesTheGuestsIdentifierFromThePingedAddress) {
  FakeLink link;
  PingNat nat(link);
  const std::vector<u8> data = bytes_of("0123456789abcdef");
  send_ping(nat, kGuestIp, kHost, 0x1234, 3, data);  // the gateway: the host's loopback
  ASSERT_EQ(link.host.sent.size(), 1u);
  EXPECT_EQ(link.host.sent[0].to, (SocketAddress{kLoopback, 0}));
  host_datagram(link, 0, {kLoopback, 0}, host_echo_reply(0x9999, 3, data));
  ASSERT_EQ(link.to_guest.size(), 1u);
  const auto& t = link.to_guest[0];
  EXPECT_EQ(t.d.protocol, static_cast<u8>(IpProtocol::icmp));
  EXPECT_EQ(t.d.source, kHost);
  EXPECT_EQ(t.d.destination, kGuestIp);
  const auto icmp = IcmpMessage::parse(t.payload);
  ASSERT_TRUE(icmp) << to_string(icmp.error);
  EXPECT_EQ(icmp->type(), 0);
  EXPECT_EQ(icmp->code(), 0);
  EXPECT_EQ(icmp->identifier(), 0x1234);
  EXPECT_EQ(icmp->sequence(), 3);
  EXPECT_EQ(std::vector<u8>(icmp->body().begin(), icmp->body().end()), data);
  EXPECT_EQ(nat.counters().replies_in, 1u);
}

TEST(PingNat, BadRepliesAreCounted) {
  FakeLink link;
  PingNat nat(link);
  send_ping(nat, kGuestIp, kOutside, 1, 1, {});
  host_datagram(link, 0, {kOutside, 0}, {0, 0, 0});
  std::vector<u8> unreachable = host_echo_reply(5, 1, {});
  unreachable[0] = 3;
  host_datagram(link, 0, {kOutside, 0}, unreachable);
  EXPECT_EQ(nat.counters().dropped_bad_reply, 2u);
  EXPECT_TRUE(link.to_guest.empty());
  // An echo request from the guest that is something else is refused too.
  std::vector<u8> frame = guest_echo_ip(kGuestIp, kOutside, 1, 1, {});
  frame[20] = 13;  // timestamp request
  store_be16(&frame[22], 0);
  store_be16(&frame[22], internet_checksum(std::span<const u8>(frame).subspan(20)));
  const auto ip = Ipv4Packet::parse(frame);
  const auto icmp = IcmpMessage::parse(ip->payload());
  ASSERT_TRUE(icmp);
  nat.guest_echo(*ip, *icmp);
  EXPECT_EQ(nat.counters().dropped_not_echo_request, 1u);
}

TEST(PingNat, RefusedPingSocketsAreCountedAndRetriedRarely) {
  FakeLink link;
  PingNat nat(link);
  link.host.refuse_sockets = true;
  send_ping(nat, kGuestIp, kOutside, 1, 1, {});
  EXPECT_EQ(nat.counters().dropped_no_ping_socket, 1u);
  EXPECT_EQ(link.logs.size(), 1u);
  link.now = 5 * kSecond;
  send_ping(nat, kGuestIp, kOutside, 1, 2, {});
  EXPECT_EQ(nat.counters().dropped_no_ping_socket, 2u);
  EXPECT_EQ(link.host.opened.size(), 1u);  // not asked again yet
  link.now = PingNat::kRetryNs;
  send_ping(nat, kGuestIp, kOutside, 1, 3, {});
  EXPECT_EQ(link.host.opened.size(), 2u);
  EXPECT_EQ(nat.counters().dropped_no_ping_socket, 3u);
  EXPECT_EQ(link.logs.size(), 1u);  // said once
  EXPECT_TRUE(link.host.sent.empty());
  link.host.refuse_sockets = false;
  link.now = 2 * PingNat::kRetryNs;
  send_ping(nat, kGuestIp, kOutside, 1, 4, {});
  EXPECT_EQ(nat.counters().requests_out, 1u);
}

TEST(PingNat, DropsWhatMayNotLeave) {
  FakeLink link;
  PingNat nat(link);
  send_ping(nat, kGuestIp, 0x0a000263, 1, 1, {});
  send_ping(nat, kGuestIp, kDns, 1, 1, {});
  EXPECT_EQ(nat.counters().dropped_no_target, 2u);
  send_ping(nat, kGuestIp, 0xffffffff, 1, 1, {});
  EXPECT_EQ(nat.counters().dropped_broadcast, 1u);
  send_ping(nat, 0, kOutside, 1, 1, {});
  EXPECT_EQ(nat.counters().dropped_bad_source, 1u);
  EXPECT_TRUE(link.host.opened.empty());
}

TEST(PingNat, IdleSocketsExpireAndStateRoundTrips) {
  FakeLink link;
  PingNat nat(link);
  send_ping(nat, kGuestIp, kOutside, 0x1234, 1, {});
  ASSERT_EQ(link.wakes, std::vector<u64>{PingNat::kIdleNs});
  std::ostringstream bin;
  {
    BinaryOut ar(bin);
    nat.serialize(ar);
  }
  PingNat loaded(link);
  {
    std::istringstream in(bin.str());
    BinaryIn ar(in);
    loaded.serialize(ar);
  }
  loaded.rebind_sockets();
  EXPECT_EQ(loaded.describe_flows(),
            std::vector<std::string>{"icmp 10.0.2.15 id 4660 socket 0 198.51.100.7"});
  host_datagram(link, 0, {kOutside, 0}, host_echo_reply(0x77, 1, {}));
  ASSERT_EQ(link.to_guest.size(), 1u);
  EXPECT_EQ(loaded.counters().replies_in, 1u);
  loaded.on_timer(PingNat::kIdleNs);
  EXPECT_EQ(loaded.flow_count(), 0u);
  EXPECT_EQ(loaded.counters().flows_expired, 1u);
  EXPECT_EQ(link.host.closed, std::vector<SocketId>{0});
}

// Random guest datagrams and random host events (including kinds a UDP
// socket never sends, for sockets nobody owns): every outcome is counted,
// every datagram to the guest is well formed and goes to a guest that has a
// flow, and the flow table stays bounded.
TEST(UdpNat, RandomTrafficKeepsTheInvariants) {
  FakeLink link;
  UdpNat nat(link);
  PingNat ping(link);
  std::mt19937 rng(1234);
  auto pick = [&](u32 n) { return static_cast<u32>(rng() % n); };
  const u32 dsts[] = {kHost, kDns, kOutside, 0x0a000263, 0xffffffff, 0xe0000001, 0x08080808};
  for (int i = 0; i < 20000; ++i) {
    link.now += pick(3) * kSecond;
    link.guest_known = pick(10) != 0;
    link.host.refuse_sockets = pick(20) == 0;
    switch (pick(4)) {
      case 0:
      case 1: {
        std::vector<u8> payload(pick(64));
        for (u8& b : payload) b = static_cast<u8>(rng());
        send_udp(nat, kGuestIp + pick(3), static_cast<u16>(pick(3000)), dsts[pick(7)],
                 static_cast<u16>(pick(3) == 0 ? 53 : pick(100)), payload);
        break;
      }
      case 2: {
        SocketEvent e;
        e.kind = static_cast<SocketEvent::Kind>(pick(8));
        e.socket = pick(link.host.next_socket + 2);
        e.peer = {pick(2) ? kResolver : kOutside, static_cast<u16>(pick(2) ? 53 : pick(100))};
        e.bytes.resize(pick(100));
        for (u8& b : e.bytes) b = static_cast<u8>(rng());
        if (pick(2) && e.bytes.size() >= 8) e.bytes[0] = e.bytes[1] = 0;  // an echo reply, sometimes
        link.machine().deliver_socket_event(e);
        break;
      }
      case 3:
        if (pick(4) == 0) {
          nat.on_timer(link.now);
          ping.on_timer(link.now);
        } else {
          send_ping(ping, kGuestIp, dsts[pick(7)], static_cast<u16>(pick(4)), static_cast<u16>(i), {});
        }
        break;
    }
    ASSERT_LE(nat.flow_count(), UdpNat::kMaxFlows);
    ASSERT_LE(ping.flow_count(), PingNat::kMaxFlows);
  }
  for (const auto& t : link.to_guest) {
    EXPECT_GE(t.d.destination, kGuestIp);
    EXPECT_LE(t.d.destination, kGuestIp + 2);
    if (t.d.protocol == static_cast<u8>(IpProtocol::udp)) {
      EXPECT_TRUE(UdpDatagram::parse(t.payload, t.d.source, t.d.destination));
    } else {
      ASSERT_EQ(t.d.protocol, static_cast<u8>(IpProtocol::icmp));
      const auto m = IcmpMessage::parse(t.payload);
      ASSERT_TRUE(m);
      EXPECT_EQ(m->type(), 0);
      EXPECT_LT(m->identifier(), 4);
    }
  }
  const auto& c = nat.counters();
  EXPECT_GT(c.datagrams_out, 0u);
  EXPECT_GT(c.datagrams_in, 0u);
  EXPECT_GT(c.dropped_unexpected_event, 0u);
  EXPECT_GT(c.flows_expired, 0u);
  EXPECT_GT(ping.counters().replies_in, 0u);
}

}  // namespace
}  // namespace reel
