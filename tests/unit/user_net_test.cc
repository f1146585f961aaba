// The user-mode gateway, frame by frame: a test port plays the guest on a
// hub with the UserNet, crafts frames with the wire/ builders and checks the
// answers field by field against what libslirp sends.

#include "netstack/user_net.h"

#include <gtest/gtest.h>

#include <sstream>

#include "core/machine.h"
#include "netstack/hub.h"
#include "netstack/wire/arp.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/dhcp.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"
#include "tests/unit/fake_host_io.h"
#include "tests/unit/guest_frames.h"

namespace reel {
namespace {

using namespace reel::wire;
using namespace reel::test::frames;

// One answer, parsed down to the layer the test wants.
struct Reply {
  std::vector<u8> frame;
  MacAddress eth_dst{}, eth_src{};
  std::optional<Ipv4Packet> ip;
  std::optional<UdpDatagram> udp;
  std::optional<DhcpMessage> dhcp;
  std::optional<IcmpMessage> icmp;
};

class UserNetTest : public ::testing::Test {
 protected:
  void SetUp() override { build({}); }

  void build(UserNet::Config config) {
    net.reset();
    machine = std::make_unique<Machine>(MachineConfig{}, host);
    hub = std::make_unique<Hub>(0);
    net = std::make_unique<UserNet>("user.0", *machine, std::move(config));
    guest = std::make_unique<GuestPort>();
    hub->attach(*guest, "guest");
    hub->attach(*net, "user.0");
  }

  // Sends `frame` and returns what came back (taking it off the port).
  std::vector<std::vector<u8>> exchange(std::span<const u8> frame) {
    guest->got.clear();
    guest->send(frame);
    return std::exchange(guest->got, {});
  }

  // Exactly one IPv4 answer, parsed.
  Reply one_reply(std::span<const u8> frame) {
    auto got = exchange(frame);
    EXPECT_EQ(got.size(), 1u);
    Reply r;
    if (got.size() != 1) return r;
    r.frame = std::move(got[0]);
    const auto eth = EthernetFrame::parse(r.frame);
    EXPECT_TRUE(eth);
    if (!eth) return r;
    r.eth_dst = eth->destination();
    r.eth_src = eth->source();
    if (eth->ether_type() != static_cast<u16>(EtherType::ipv4)) return r;
    const auto ip = Ipv4Packet::parse(eth->payload());
    EXPECT_TRUE(ip) << to_string(ip.error);
    if (!ip) return r;
    r.ip = *ip;
    if (ip->protocol() == static_cast<u8>(IpProtocol::udp)) {
      const auto udp = UdpDatagram::parse(*ip);
      EXPECT_TRUE(udp) << to_string(udp.error);
      if (!udp) return r;
      r.udp = *udp;
      const auto dhcp = DhcpMessage::parse(udp->payload());
      EXPECT_TRUE(dhcp) << to_string(dhcp.error);
      if (dhcp) r.dhcp = *dhcp;
    } else if (ip->protocol() == static_cast<u8>(IpProtocol::icmp)) {
      const auto icmp = IcmpMessage::parse(ip->payload());
      EXPECT_TRUE(icmp) << to_string(icmp.error);
      if (icmp) r.icmp = *icmp;
    }
    return r;
  }

  std::string dump() {
    std::ostringstream s;
    {
      JsonOut ar(s);
      net->dump_state(ar);
    }
    return s.str();
  }

  test::FakeHostIO host;
  std::unique_ptr<Machine> machine;
  std::unique_ptr<Hub> hub;
  std::unique_ptr<UserNet> net;
  std::unique_ptr<GuestPort> guest;
};

UserNet::Config restricted() {
  UserNet::Config c;
  c.restrict = true;
  return c;
}

std::vector<u8> option_bytes(const DhcpMessage& m, u8 code) {
  auto v = m.option(code);
  if (!v) return {};
  return {v->begin(), v->end()};
}
std::vector<u8> be32(u32 v) {
  return {static_cast<u8>(v >> 24), static_cast<u8>(v >> 16), static_cast<u8>(v >> 8), static_cast<u8>(v)};
}
std::vector<u8> str(std::string_view s) { return {s.begin(), s.end()}; }

// ------------------------------------------------------------------ ARP --

TEST_F(UserNetTest, ArpRequestForGatewayAnsweredWithSlirpMac) {
  const auto got = exchange(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kHost));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].size(), 64u);  // libslirp's zero-padded reply buffer
  const auto eth = EthernetFrame::parse(got[0]);
  ASSERT_TRUE(eth);
  EXPECT_EQ(eth->destination(), kGuestMac);
  EXPECT_EQ(eth->source(), kGatewayMac);
  EXPECT_EQ(eth->ether_type(), static_cast<u16>(EtherType::arp));
  const auto arp = ArpPacket::parse(eth->payload());
  ASSERT_TRUE(arp);
  EXPECT_EQ(arp->operation(), ArpOperation::reply);
  EXPECT_EQ(arp->sender_mac(), kGatewayMac);
  EXPECT_EQ(arp->sender_ip(), kHost);
  EXPECT_EQ(arp->target_mac(), kGuestMac);
  EXPECT_EQ(arp->target_ip(), kGuestIp);
  EXPECT_EQ(net->arp_lookup(kGuestIp), kGuestMac);
  EXPECT_EQ(net->counters().arp_replies, 1u);
}

TEST_F(UserNetTest, ArpForDnsAnsweredWithItsOwnMac) {
  const auto got = exchange(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kDns));
  ASSERT_EQ(got.size(), 1u);
  const auto arp = ArpPacket::parse(EthernetFrame::parse(got[0])->payload());
  ASSERT_TRUE(arp);
  EXPECT_EQ(arp->sender_mac(), kDnsMac);
  EXPECT_EQ(arp->sender_ip(), kDns);
}

TEST_F(UserNetTest, ArpForOtherAddressesAndGratuitousArpNotAnswered) {
  EXPECT_TRUE(exchange(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, 0x0a000210)).empty());
  EXPECT_TRUE(exchange(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, 0x08080808)).empty());
  EXPECT_EQ(net->counters().arp_ignored, 2u);
  EXPECT_FALSE(net->arp_lookup(kGuestIp));  // not learnt from requests for others, like libslirp
  EXPECT_TRUE(exchange(arp_frame(ArpOperation::request, kGuest2Mac, 0x0a000210, 0x0a000210)).empty());
  EXPECT_EQ(net->counters().arp_gratuitous, 1u);
  EXPECT_EQ(net->arp_lookup(0x0a000210), kGuest2Mac);
  // An ARP reply teaches the table too.
  EXPECT_TRUE(exchange(arp_frame(ArpOperation::reply, kGuestMac, kGuestIp, kHost, kGatewayMac)).empty());
  EXPECT_EQ(net->arp_lookup(kGuestIp), kGuestMac);
}

TEST_F(UserNetTest, ArpTableIsBoundedRoundRobin) {
  for (u32 i = 0; i < UserNet::kArpTableSize + 3; ++i) {
    MacAddress mac = kGuestMac;
    mac[5] = static_cast<u8>(i);
    exchange(arp_frame(ArpOperation::request, mac, 0x0a000240 + i, 0x0a000240 + i));
  }
  // The first three were replaced by the last three, in order.
  EXPECT_FALSE(net->arp_lookup(0x0a000240));
  EXPECT_FALSE(net->arp_lookup(0x0a000242));
  EXPECT_TRUE(net->arp_lookup(0x0a000243));
  EXPECT_EQ(net->arp_table()[0].ip, 0x0a000240u + UserNet::kArpTableSize);
}

TEST_F(UserNetTest, ShortArpDropped) {
  auto f = arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kHost);
  for (std::size_t len : {14u, 15u, 20u, 41u}) {
    EXPECT_TRUE(exchange(std::span(f).first(len)).empty());
  }
  EXPECT_EQ(net->counters().dropped_bad_arp, 4u);
  EXPECT_EQ(net->counters().arp_replies, 0u);
}

TEST_F(UserNetTest, FramesForOtherMacsIgnored) {
  const auto f = ping_frame(kGuestIp, kHost, 1, 1, {}, kGuest2Mac);
  EXPECT_TRUE(exchange(f).empty());
  EXPECT_EQ(net->counters().dropped_not_for_us, 1u);
  const u8 tiny[5] = {};
  EXPECT_TRUE(exchange(tiny).empty());
  EXPECT_EQ(net->counters().dropped_bad_ethernet, 1u);
}

// ----------------------------------------------------------------- ICMP --

TEST_F(UserNetTest, PingGatewayAndDnsAnswered) {
  const std::vector<u8> data = {'a', 'b', 'c', 'd', 'e', 'f', 'g'};
  for (u32 dst : {kHost, kDns}) {
    const Reply r = one_reply(ping_frame(kGuestIp, dst, 0x4242, 7, data));
    ASSERT_TRUE(r.icmp);  // parse verified the IP and ICMP checksums
    EXPECT_EQ(r.eth_dst, kGuestMac);
    EXPECT_EQ(r.eth_src, kGatewayMac);  // libslirp sends everything from the gateway's MAC
    EXPECT_EQ(r.ip->source(), dst);
    EXPECT_EQ(r.ip->destination(), kGuestIp);
    EXPECT_EQ(r.ip->ttl(), 255);
    EXPECT_EQ(r.icmp->type(), static_cast<u8>(IcmpType::echo_reply));
    EXPECT_EQ(r.icmp->code(), 0);
    EXPECT_EQ(r.icmp->identifier(), 0x4242);
    EXPECT_EQ(r.icmp->sequence(), 7);
    EXPECT_EQ(std::vector<u8>(r.icmp->body().begin(), r.icmp->body().end()), data);
    EXPECT_TRUE(internet_checksum_ok(r.icmp->bytes()));
    EXPECT_TRUE(internet_checksum_ok(r.ip->header()));
  }
  EXPECT_EQ(net->counters().icmp_echo_replies, 2u);
}

TEST_F(UserNetTest, PingElsewhereGoesToThePingNat) {
  EXPECT_TRUE(exchange(ping_frame(kGuestIp, 0x08080808, 1, 1, {})).empty());
  ASSERT_EQ(host.opened.size(), 1u);
  EXPECT_EQ(host.opened[0].kind, SocketSpec::Kind::icmp_echo);
  EXPECT_EQ(net->ping().counters().requests_out, 1u);
  build(restricted());
  EXPECT_TRUE(exchange(ping_frame(kGuestIp, 0x08080808, 1, 1, {})).empty());
  EXPECT_EQ(net->counters().dropped_restricted, 1u);
  EXPECT_EQ(host.opened.size(), 1u);
  // The gateway itself still answers under restrict=on.
  EXPECT_EQ(exchange(ping_frame(kGuestIp, kHost, 1, 1, {})).size(), 1u);
}

TEST_F(UserNetTest, BadIpv4AndIcmpDropped) {
  auto f = ping_frame(kGuestIp, kHost, 1, 1, std::vector<u8>(16, 0x55));
  // Bad IP header checksum.
  auto bad = f;
  bad[kEthernetHeaderSize + 10] ^= 1;
  EXPECT_TRUE(exchange(bad).empty());
  EXPECT_EQ(net->counters().dropped_ipv4_checksum, 1u);
  // ICMP echo shorter than its IP length (the frame cut, total length kept).
  EXPECT_TRUE(exchange(std::span(f).first(f.size() - 4)).empty());
  EXPECT_EQ(net->counters().dropped_ipv4_malformed, 1u);
  // Bad ICMP checksum.
  bad = f;
  bad.back() ^= 1;
  EXPECT_TRUE(exchange(bad).empty());
  EXPECT_EQ(net->counters().dropped_bad_icmp, 1u);
  // An IP header cut short.
  EXPECT_TRUE(exchange(std::span(f).first(kEthernetHeaderSize + 12)).empty());
  EXPECT_EQ(net->counters().dropped_ipv4_malformed, 2u);
  // Other ICMP types: ignored.
  std::vector<u8> icmp(8);
  build_icmp_echo(icmp, IcmpType::echo_reply, 1, 1, {});
  EXPECT_TRUE(exchange(ethernet(kGatewayMac, kGuestMac, EtherType::ipv4,
                                ipv4(ip_fields(kGuestIp, kHost, IpProtocol::icmp), icmp)))
                  .empty());
  EXPECT_EQ(net->counters().dropped_icmp_ignored, 1u);
}

TEST_F(UserNetTest, FragmentedEchoIsReassembledAndAnswered) {
  std::vector<u8> body(3000);
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<u8>(i * 13);
  std::vector<u8> icmp(8 + body.size());
  ASSERT_TRUE(build_icmp_echo(icmp, IcmpType::echo_request, 7, 9, body));
  Ipv4Fields f = ip_fields(kGuestIp, kHost, IpProtocol::icmp);
  f.more_fragments = true;
  EXPECT_TRUE(exchange(ethernet(kGatewayMac, kGuestMac, EtherType::ipv4,
                                ipv4(f, std::span<const u8>(icmp).first(1480))))
                  .empty());
  f.more_fragments = false;
  f.fragment_offset = 1480 / 8;
  const auto replies = exchange(
      ethernet(kGatewayMac, kGuestMac, EtherType::ipv4, ipv4(f, std::span<const u8>(icmp).subspan(1480))));
  // The 3008-byte reply leaves in three fragments of one datagram.
  ASSERT_EQ(replies.size(), 3u);
  std::vector<u8> echoed;
  u16 id = 0;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const auto eth = EthernetFrame::parse(replies[i]);
    ASSERT_TRUE(eth);
    const auto ip = Ipv4Packet::parse(eth->payload());
    ASSERT_TRUE(ip);
    if (i == 0) id = ip->identification();
    EXPECT_EQ(ip->identification(), id);
    EXPECT_EQ(ip->more_fragments(), i + 1 < replies.size());
    EXPECT_EQ(ip->fragment_offset_bytes(), echoed.size());
    echoed.insert(echoed.end(), ip->payload().begin(), ip->payload().end());
  }
  ASSERT_EQ(echoed.size(), icmp.size());
  EXPECT_EQ(echoed[0], static_cast<u8>(IcmpType::echo_reply));
  EXPECT_TRUE(std::equal(echoed.begin() + 8, echoed.end(), body.begin()));
  EXPECT_EQ(net->counters().fragments_out, 3u);
  EXPECT_EQ(net->reassembly().counters().reassembled, 1u);
}

TEST_F(UserNetTest, OverlappingFragmentsDroppedAndCounted) {
  std::vector<u8> icmp(16);
  build_icmp_echo(icmp, IcmpType::echo_request, 1, 1, std::vector<u8>(8));
  Ipv4Fields f = ip_fields(kGuestIp, kHost, IpProtocol::icmp);
  f.more_fragments = true;
  EXPECT_TRUE(exchange(ethernet(kGatewayMac, kGuestMac, EtherType::ipv4, ipv4(f, icmp))).empty());
  f.more_fragments = false;
  f.fragment_offset = 1;  // starts inside the first piece
  EXPECT_TRUE(exchange(ethernet(kGatewayMac, kGuestMac, EtherType::ipv4, ipv4(f, icmp))).empty());
  EXPECT_EQ(net->counters().dropped_ipv4_fragment, 1u);
  EXPECT_EQ(net->reassembly().counters().dropped_overlap, 1u);
}

TEST_F(UserNetTest, UnfinishedFragmentsTimeOutWithTimeExceeded) {
  std::vector<u8> icmp(16);
  build_icmp_echo(icmp, IcmpType::echo_request, 1, 1, std::vector<u8>(8));
  Ipv4Fields f = ip_fields(kGuestIp, kHost, IpProtocol::icmp);
  f.more_fragments = true;
  const auto first = ipv4(f, icmp);
  EXPECT_TRUE(exchange(ethernet(kGatewayMac, kGuestMac, EtherType::ipv4, first)).empty());
  machine->clock().advance_idle_to(machine->clock().now_ns() + 31'000'000'000ull);
  machine->scheduler().run_due(machine->clock().now_ns());
  ASSERT_EQ(guest->got.size(), 1u);
  const auto eth = EthernetFrame::parse(guest->got[0]);
  ASSERT_TRUE(eth);
  const auto ip = Ipv4Packet::parse(eth->payload());
  ASSERT_TRUE(ip);
  const auto err = IcmpMessage::parse(ip->payload());
  ASSERT_TRUE(err);
  EXPECT_EQ(err->type(), static_cast<u8>(IcmpType::time_exceeded));
  EXPECT_EQ(err->code(), static_cast<u8>(IcmpTimeExceededCode::reassembly));
  // The quote: the first fragment's header and 8 bytes of its payload.
  EXPECT_TRUE(std::equal(err->body().begin(), err->body().end(), first.begin()));
  EXPECT_EQ(err->body().size(), 28u);
}

TEST_F(UserNetTest, TtlZeroGetsTimeExceeded) {
  std::vector<u8> icmp(16);
  build_icmp_echo(icmp, IcmpType::echo_request, 1, 1, std::vector<u8>(8));
  Ipv4Fields f = ip_fields(kGuestIp, kHost, IpProtocol::icmp);
  f.ttl = 0;
  const auto datagram = ipv4(f, icmp);
  const Reply r = one_reply(ethernet(kGatewayMac, kGuestMac, EtherType::ipv4, datagram));
  ASSERT_TRUE(r.icmp);
  EXPECT_EQ(r.icmp->type(), static_cast<u8>(IcmpType::time_exceeded));
  EXPECT_EQ(r.icmp->code(), 0);
  EXPECT_EQ(r.ip->source(), kHost);
  EXPECT_EQ(r.ip->tos(), 0xc0);
  EXPECT_EQ(std::vector<u8>(r.icmp->body().begin(), r.icmp->body().end()), datagram);
  EXPECT_EQ(net->counters().dropped_ttl_expired, 1u);
}

TEST_F(UserNetTest, UdpTftpAndTcpReachTheirServices) {
  const std::vector<u8> payload = {1, 2, 3};
  EXPECT_TRUE(exchange(udp_frame(kGuestIp, 0x08080808, 1000, 53, payload, kGuestMac, kGatewayMac)).empty());
  EXPECT_EQ(net->udp().counters().datagrams_out, 1u);
  // No tftp= root: the server answers every request with an error.
  std::vector<u8> rrq = {0, 1, 'f', 0, 'o', 'c', 't', 'e', 't', 0};
  EXPECT_EQ(exchange(udp_frame(kGuestIp, kHost, 1000, 69, rrq, kGuestMac, kGatewayMac)).size(), 1u);
  EXPECT_EQ(net->tftp().counters().refused_no_root, 1u);
  std::vector<u8> tcp(20);  // data offset 0: malformed
  EXPECT_TRUE(exchange(ethernet(kGatewayMac, kGuestMac, EtherType::ipv4,
                                ipv4(ip_fields(kGuestIp, 0x08080808, IpProtocol::tcp), tcp)))
                  .empty());
  EXPECT_EQ(net->tcp().counters().dropped_malformed, 1u);
  // UDP datagram shorter than its header / than its length field.
  auto f = udp_frame(kGuestIp, kHost, 68, 67, payload);
  auto ipbytes = std::vector<u8>(f.begin() + kEthernetHeaderSize, f.end());
  for (std::size_t udp_len : {4u, 8u}) {
    Ipv4Fields fi = ip_fields(0, 0xffffffff, IpProtocol::udp);
    std::vector<u8> udp(ipbytes.begin() + 20, ipbytes.begin() + 20 + static_cast<std::ptrdiff_t>(udp_len));
    if (udp_len == 8) {
      store_be16(&udp[4], 200);  // length beyond the datagram
      store_be16(&udp[6], 0);    // no checksum, so the length is what is wrong
    }
    EXPECT_TRUE(exchange(ethernet(kBroadcastMac, kGuestMac, EtherType::ipv4, ipv4(fi, udp))).empty());
  }
  EXPECT_EQ(net->counters().dropped_bad_udp, 2u);
  // UDP from 0.0.0.0:0 (a libslirp CVE input): nothing to answer, counted.
  EXPECT_TRUE(exchange(udp_frame(0, 0x08080808, 0, 53, payload, kGuestMac, kGatewayMac)).empty());
  EXPECT_EQ(net->udp().counters().dropped_bad_source + net->udp().counters().dropped_source_port_zero, 1u);
  // A ping from 0.0.0.0 has nobody to answer to.
  EXPECT_TRUE(exchange(ping_frame(0, kHost, 1, 1, {})).empty());
  EXPECT_EQ(net->counters().dropped_unroutable, 1u);
}

// ----------------------------------------------------------------- DHCP --

TEST_F(UserNetTest, DhcpDiscoverOfferRequestAck) {
  ClientMessage c;
  c.parameters = {1, 3, 6, 15, 28, 51};
  Reply r = one_reply(dhcp_frame(c));
  ASSERT_TRUE(r.dhcp);
  // Addressing as libslirp: 10.0.2.2:67 -> 255.255.255.255:68, Ethernet broadcast.
  EXPECT_EQ(r.eth_dst, kBroadcastMac);
  EXPECT_EQ(r.eth_src, kGatewayMac);
  EXPECT_EQ(r.ip->source(), kHost);
  EXPECT_EQ(r.ip->destination(), 0xffffffffu);
  EXPECT_EQ(r.ip->ttl(), 64);
  EXPECT_EQ(r.ip->tos(), 0x10);
  EXPECT_EQ(r.udp->source_port(), 67);
  EXPECT_EQ(r.udp->destination_port(), 68);
  EXPECT_EQ(r.udp->payload().size(), 548u);
  const DhcpMessage& o = *r.dhcp;
  EXPECT_EQ(o.op(), 2);
  EXPECT_EQ(o.htype(), 1);
  EXPECT_EQ(o.hlen(), 6);
  EXPECT_EQ(o.xid(), 0xdeadbeefu);
  EXPECT_EQ(o.flags(), 0);
  EXPECT_EQ(o.ciaddr(), 0u);
  EXPECT_EQ(o.yiaddr(), 0x0a00020fu);
  EXPECT_EQ(o.siaddr(), kHost);
  EXPECT_EQ(o.giaddr(), 0u);
  EXPECT_TRUE(std::equal(kGuestMac.begin(), kGuestMac.end(), o.chaddr().begin()));
  EXPECT_EQ(o.message_type(), DhcpMessageType::offer);
  EXPECT_EQ(o.server_id(), kHost);
  EXPECT_EQ(option_bytes(o, dhcp_option::subnet_mask), be32(0xffffff00));
  EXPECT_EQ(option_bytes(o, dhcp_option::router), be32(kHost));
  EXPECT_EQ(option_bytes(o, dhcp_option::dns_server), be32(kDns));
  EXPECT_EQ(o.lease_time(), 86400u);
  EXPECT_FALSE(o.option(dhcp_option::broadcast));  // libslirp sends no option 28
  EXPECT_FALSE(o.option(dhcp_option::hostname));
  EXPECT_FALSE(o.option(dhcp_option::domain_name));
  // libslirp's option order.
  std::vector<u8> order;
  for (DhcpOption opt : o) order.push_back(opt.code);
  EXPECT_EQ(order, (std::vector<u8>{53, 54, 1, 3, 6, 51}));

  c.type = DhcpMessageType::request;
  c.requested = 0x0a00020f;
  c.server_id = kHost;
  r = one_reply(dhcp_frame(c));
  ASSERT_TRUE(r.dhcp);
  EXPECT_EQ(r.dhcp->message_type(), DhcpMessageType::ack);
  EXPECT_EQ(r.dhcp->yiaddr(), 0x0a00020fu);
  EXPECT_EQ(r.dhcp->siaddr(), kHost);
  EXPECT_EQ(r.dhcp->lease_time(), 86400u);
  EXPECT_EQ(net->lease_for(kGuestMac), 0x0a00020fu);
  EXPECT_EQ(net->arp_lookup(0x0a00020f), kGuestMac);
  EXPECT_EQ(net->counters().dhcp_offers, 1u);
  EXPECT_EQ(net->counters().dhcp_acks, 1u);
  // The guest can now ping the gateway from its address.
  EXPECT_EQ(one_reply(ping_frame(0x0a00020f, kHost, 1, 1, {})).eth_dst, kGuestMac);
}

TEST_F(UserNetTest, DhcpSecondMacGetsNextAddressSameMacKeepsItsOwn) {
  ClientMessage a;
  ClientMessage b;
  b.mac = kGuest2Mac;
  EXPECT_EQ(one_reply(dhcp_frame(a)).dhcp->yiaddr(), 0x0a00020fu);
  EXPECT_EQ(one_reply(dhcp_frame(b)).dhcp->yiaddr(), 0x0a000210u);
  EXPECT_EQ(one_reply(dhcp_frame(a)).dhcp->yiaddr(), 0x0a00020fu);
  b.type = DhcpMessageType::request;
  b.requested = 0x0a000210;
  EXPECT_EQ(one_reply(dhcp_frame(b)).dhcp->message_type(), DhcpMessageType::ack);
  const auto leases = net->leases();
  ASSERT_EQ(leases.size(), 2u);
  EXPECT_EQ(leases[0].address, 0x0a00020fu);
  EXPECT_EQ(leases[0].mac, kGuestMac);
  EXPECT_EQ(leases[1].address, 0x0a000210u);
  EXPECT_EQ(leases[1].mac, kGuest2Mac);
}

TEST_F(UserNetTest, DhcpRequestForWrongAddressNaked) {
  ClientMessage a;
  one_reply(dhcp_frame(a));
  ClientMessage b;
  b.mac = kGuest2Mac;
  b.type = DhcpMessageType::request;
  for (u32 wrong : {0x0a00020fu /* a's */, 0xc0a80164u /* not ours */, 0x0a000230u /* past the range */}) {
    b.requested = wrong;
    const Reply r = one_reply(dhcp_frame(b));
    ASSERT_TRUE(r.dhcp);
    EXPECT_EQ(r.dhcp->message_type(), DhcpMessageType::nak);
    EXPECT_EQ(r.dhcp->yiaddr(), 0u);
    EXPECT_EQ(r.dhcp->server_id(), kHost);
    EXPECT_EQ(option_bytes(*r.dhcp, 56), str("requested address not available"));
    EXPECT_FALSE(r.dhcp->lease_time());
    EXPECT_EQ(r.ip->destination(), 0xffffffffu);
  }
  EXPECT_EQ(net->counters().dhcp_naks, 3u);
  EXPECT_FALSE(net->lease_for(kGuest2Mac));
  // A REQUEST for another server's offer is not ours to answer.
  b.requested = 0x0a000210;
  b.server_id = 0x0a000299;
  EXPECT_TRUE(exchange(dhcp_frame(b)).empty());
  EXPECT_EQ(net->counters().dropped_dhcp_other_server, 1u);
}

TEST_F(UserNetTest, DhcpReleaseFreesTheAddress) {
  ClientMessage a;
  a.type = DhcpMessageType::request;
  a.requested = 0x0a00020f;
  EXPECT_EQ(one_reply(dhcp_frame(a)).dhcp->message_type(), DhcpMessageType::ack);
  ClientMessage rel;
  rel.type = DhcpMessageType::release;
  rel.ciaddr = 0x0a00020f;
  rel.server_id = kHost;
  EXPECT_TRUE(exchange(dhcp_frame(rel)).empty());
  EXPECT_EQ(net->counters().dhcp_releases, 1u);
  EXPECT_FALSE(net->lease_for(kGuestMac));
  ClientMessage b;
  b.mac = kGuest2Mac;
  EXPECT_EQ(one_reply(dhcp_frame(b)).dhcp->yiaddr(), 0x0a00020fu);
  // Releasing what one does not hold changes nothing.
  rel.mac = kGuestMac;
  EXPECT_TRUE(exchange(dhcp_frame(rel)).empty());
  EXPECT_EQ(net->counters().dropped_dhcp_bad_release, 1u);
  EXPECT_EQ(net->lease_for(kGuest2Mac), 0x0a00020fu);
}

TEST_F(UserNetTest, DhcpDeclineRetiresTheAddress) {
  one_reply(dhcp_frame(ClientMessage{}));
  ClientMessage d;
  d.type = DhcpMessageType::decline;
  d.requested = 0x0a00020f;
  d.server_id = kHost;
  EXPECT_TRUE(exchange(dhcp_frame(d)).empty());
  EXPECT_EQ(net->counters().dhcp_declines, 1u);
  EXPECT_EQ(one_reply(dhcp_frame(ClientMessage{})).dhcp->yiaddr(), 0x0a000210u);
}

TEST_F(UserNetTest, DhcpInformAckedWithoutAddressOrLease) {
  ClientMessage i;
  i.type = DhcpMessageType::inform;
  i.ciaddr = 0x0a000220;
  const Reply r = one_reply(dhcp_frame(i));
  ASSERT_TRUE(r.dhcp);
  EXPECT_EQ(r.dhcp->message_type(), DhcpMessageType::ack);
  EXPECT_EQ(r.dhcp->yiaddr(), 0u);
  EXPECT_EQ(r.dhcp->ciaddr(), 0x0a000220u);
  EXPECT_FALSE(r.dhcp->lease_time());
  EXPECT_EQ(option_bytes(*r.dhcp, dhcp_option::router), be32(kHost));
  EXPECT_EQ(r.ip->destination(), 0x0a000220u);
  EXPECT_EQ(r.eth_dst, kGuestMac);
  EXPECT_TRUE(net->leases().empty());
}

TEST_F(UserNetTest, DhcpPxeAndNameOptions) {
  UserNet::Config cfg;
  cfg.hostname = "guest1";
  cfg.domainname = "example.org";
  cfg.dns_search = {"example.org", "lab.example.org"};
  cfg.bootfile = "pxelinux.0";
  cfg.tftp_server_name = "10.0.2.2";
  build(cfg);
  ClientMessage c;
  c.parameters = {1, 3, 6, 66, 67};
  const Reply r = one_reply(dhcp_frame(c));
  ASSERT_TRUE(r.dhcp);
  const DhcpMessage& o = *r.dhcp;
  EXPECT_EQ(option_bytes(o, dhcp_option::hostname), str("guest1"));
  EXPECT_EQ(option_bytes(o, dhcp_option::domain_name), str("example.org"));
  EXPECT_EQ(option_bytes(o, dhcp_option::tftp_server_name), str("10.0.2.2"));
  EXPECT_EQ(option_bytes(o, dhcp_option::bootfile_name), str("pxelinux.0"));
  // RFC 1035 names with the suffix compressed: 7example3org0 3lab <ptr to 0>.
  const std::vector<u8> search = {7,   'e', 'x', 'a', 'm', 'p', 'l', 'e',  3, 'o',
                                  'r', 'g', 0,   3,   'l', 'a', 'b', 0xc0, 0};
  EXPECT_EQ(option_bytes(o, dhcp_option::domain_search), search);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(o.file().data())), "pxelinux.0");
  EXPECT_EQ(o.siaddr(), kHost);
  std::vector<u8> order;
  for (DhcpOption opt : o) order.push_back(opt.code);
  EXPECT_EQ(order, (std::vector<u8>{53, 54, 1, 3, 6, 51, 12, 15, 66, 119, 67}));
  // Without 67 in the request list only the BOOTP file field names it, as in libslirp.
  c.parameters = {1, 3};
  EXPECT_FALSE(one_reply(dhcp_frame(c)).dhcp->option(dhcp_option::bootfile_name));
}

TEST_F(UserNetTest, DhcpRestrictedOmitsRouterAndDns) {
  build(restricted());
  const Reply r = one_reply(dhcp_frame(ClientMessage{}));
  ASSERT_TRUE(r.dhcp);
  EXPECT_FALSE(r.dhcp->option(dhcp_option::router));
  EXPECT_FALSE(r.dhcp->option(dhcp_option::dns_server));
  EXPECT_EQ(net->describe_port(), "net=10.0.2.0, restricted=y");
}

TEST_F(UserNetTest, DhcpLeasesRunOut) {
  for (u32 i = 0; i < UserNet::kLeaseCount; ++i) {
    ClientMessage c;
    c.mac[5] = static_cast<u8>(0x80 + i);
    EXPECT_EQ(one_reply(dhcp_frame(c)).dhcp->yiaddr(), 0x0a00020fu + i);
  }
  ClientMessage late;
  late.mac[5] = 0xff;
  EXPECT_TRUE(exchange(dhcp_frame(late)).empty());
  EXPECT_EQ(net->counters().dropped_dhcp_no_address, 1u);
}

TEST_F(UserNetTest, DhcpMalformedDropped) {
  // Options running past the packet: a length byte beyond the end.
  auto p = dhcp_payload(ClientMessage{});
  p.resize(kDhcpOptionsOffset + 3);
  p[kDhcpOptionsOffset + 0] = dhcp_option::message_type;
  p[kDhcpOptionsOffset + 1] = 1;
  p[kDhcpOptionsOffset + 2] = 1;
  p.push_back(dhcp_option::hostname);
  p.push_back(200);
  p.push_back('x');
  EXPECT_TRUE(exchange(udp_frame(0, 0xffffffff, 68, 67, p)).empty());
  // Shorter than a BOOTP header; not BOOTP at all; a BOOTREPLY.
  EXPECT_TRUE(exchange(udp_frame(0, 0xffffffff, 68, 67, std::vector<u8>(100, 1))).empty());
  EXPECT_TRUE(exchange(udp_frame(0, 0xffffffff, 68, 67, std::vector<u8>(300, 0))).empty());
  EXPECT_EQ(net->counters().dropped_dhcp_malformed, 3u);
  auto reply = dhcp_payload(ClientMessage{});
  reply[0] = 2;
  EXPECT_TRUE(exchange(udp_frame(0, 0xffffffff, 68, 67, reply)).empty());
  EXPECT_EQ(net->counters().dropped_dhcp_not_request, 1u);
  // Message types a server does not take (an OFFER from a client).
  ClientMessage odd;
  odd.type = DhcpMessageType::offer;
  EXPECT_TRUE(exchange(dhcp_frame(odd)).empty());
  EXPECT_EQ(net->counters().dropped_dhcp_unknown_type, 1u);
  EXPECT_TRUE(net->leases().empty());
}

TEST_F(UserNetTest, DnsOverTcpAndUdpGoesToTheResolver) {
  UserNet::Config c;
  c.resolver = "127.0.0.1:5353";
  build(c);
  exchange(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kDns));
  const std::vector<u8> query = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1};
  EXPECT_TRUE(exchange(udp_frame(kGuestIp, kDns, 5000, 53, query, kGuestMac, kDnsMac)).empty());
  ASSERT_EQ(host.sent.size(), 1u);
  EXPECT_EQ(host.sent[0].to, (SocketAddress{0x7f000001, 5353}));
  TcpFields f;
  f.source_port = 40000;
  f.destination_port = 53;
  f.sequence = 1;
  f.flags = kTcpSyn;
  f.window = 65535;
  std::vector<u8> syn(20);
  ASSERT_TRUE(build_tcp(syn, kGuestIp, kDns, f, {}));
  EXPECT_TRUE(exchange(ethernet(kDnsMac, kGuestMac, EtherType::ipv4,
                                ipv4(ip_fields(kGuestIp, kDns, IpProtocol::tcp), syn)))
                  .empty());
  ASSERT_EQ(host.opened.size(), 2u);
  EXPECT_EQ(host.opened[1].kind, SocketSpec::Kind::tcp_connect);
  EXPECT_EQ(host.opened[1].host, "127.0.0.1");
  EXPECT_EQ(host.opened[1].port, 5353);
}

// ---------------------------------------------------------------- state --

TEST_F(UserNetTest, StateRoundTrip) {
  one_reply(dhcp_frame(ClientMessage{}));
  ClientMessage b;
  b.mac = kGuest2Mac;
  one_reply(dhcp_frame(b));
  one_reply(ping_frame(kGuestIp, kHost, 1, 1, {}));
  exchange(ping_frame(kGuestIp, 0x01020304, 1, 1, {}));
  const std::string before = dump();
  EXPECT_NE(before.find("\"leases\""), std::string::npos);
  EXPECT_NE(before.find("\"requests_out\": 1"), std::string::npos);
  std::stringstream bin;
  {
    BinaryOut out(bin);
    net->save_state(out);
  }
  build({});
  EXPECT_NE(dump(), before);
  {
    BinaryIn in(bin);
    net->load_state(in);
  }
  EXPECT_EQ(dump(), before);
  // The restored gateway carries on where the first one stopped.
  ClientMessage c;
  c.mac = kGuest2Mac;
  EXPECT_EQ(one_reply(dhcp_frame(c)).dhcp->yiaddr(), 0x0a000210u);
}

TEST_F(UserNetTest, DescribePortAsQemu) { EXPECT_EQ(net->describe_port(), "net=10.0.2.0, restricted=n"); }

}  // namespace
}  // namespace reel
