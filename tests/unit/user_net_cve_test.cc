// libslirp's CVE history, input by input, through reel's whole gateway
// (frames in on a hub, the NATs and servers behind it): each has a defined
// outcome, a named counter and no reply where none is due; ASan and UBSan
// watch the rest. The protocol-level tests hold the finer cases
// (tcp_nat_test, tftp_server_test, ipv4_reassembly_test); this file is the
// list a reviewer checks against the advisories.
//
//   CVE-2019-14378  ip_reass: a reassembled datagram past 65535 bytes
//   CVE-2020-1983   ip_reass: use-after-free on overlapping fragments
//   CVE-2019-15890  ip_reass: fragments that never complete
//   CVE-2021-3592   bootp_input: a BOOTP message shorter than its header
//   CVE-2021-3594   udp_input: a UDP length beyond the datagram
//   CVE-2021-3595   tftp_input: a TFTP packet shorter than its header
//   CVE-2020-7039 / CVE-2019-6778 / CVE-2020-8608  tcp_emu and friends:
//                   reel has no protocol emulation; an IRC/FTP-shaped
//                   stream is plain data
//   CVE-2020-10756 / CVE-2021-3593  icmp6/udp6: reel's stack is IPv4 only
//   plus the shapes the issue lists: UDP from 0.0.0.0:0, DHCP options
//   running past the packet, short ARP, ICMP echo shorter than its IP
//   length, TCP segments out of order to the end of the queue, an urgent
//   pointer beyond the data, TFTP with a 600-byte name.

#include <gtest/gtest.h>

#include <memory>

#include "core/machine.h"
#include "netstack/hub.h"
#include "netstack/user_net.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/tcp.h"
#include "tests/unit/fake_host_io.h"
#include "tests/unit/guest_frames.h"

namespace reel {
namespace {

using namespace reel::wire;
using namespace reel::test::frames;
using Frames = std::vector<std::vector<u8>>;

class UserNetCve : public ::testing::Test {
 protected:
  UserNetCve() : machine(MachineConfig{}, host), hub(0), net("user.0", machine, config()) {
    hub.attach(guest, "guest");
    hub.attach(net, "user.0");
    host.files_root = "/tftp";
    guest.send(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kHost));
    guest.got.clear();
  }
  static UserNetConfig config() {
    UserNetConfig c;
    c.tftp_root = "/tftp";
    return c;
  }
  Frames send(const std::vector<u8>& frame) {
    guest.got.clear();
    guest.send(frame);
    return std::exchange(guest.got, {});
  }
  // A UDP datagram to the gateway with its header fields as given.
  std::vector<u8> raw_udp(u16 sport, u16 dport, u16 length, std::vector<u8> payload) {
    std::vector<u8> u(8 + payload.size());
    store_be16(&u[0], sport);
    store_be16(&u[2], dport);
    store_be16(&u[4], length);
    store_be16(&u[6], 0);  // no checksum
    std::copy(payload.begin(), payload.end(), u.begin() + 8);
    return ethernet(kGatewayMac, kGuestMac, EtherType::ipv4,
                    ipv4(ip_fields(kGuestIp, kHost, IpProtocol::udp), u));
  }
  std::vector<u8> fragment(std::span<const u8> payload, u16 offset_units, bool more, u16 id = 0x77) {
    Ipv4Fields f = ip_fields(kGuestIp, kHost, IpProtocol::udp);
    f.identification = id;
    f.fragment_offset = offset_units;
    f.more_fragments = more;
    return ethernet(kGatewayMac, kGuestMac, EtherType::ipv4, ipv4(f, payload));
  }
  std::vector<u8> tcp(u32 seq, u32 ack, u8 flags, std::span<const u8> payload = {}, u16 urgent = 0,
                      u16 window = 65535) {
    TcpFields f;
    f.source_port = 40000;
    f.destination_port = 80;
    f.sequence = seq;
    f.acknowledgment = ack;
    f.flags = flags;
    f.window = window;
    f.urgent_pointer = urgent;
    if (flags & kTcpSyn) f.options.mss = 1460;
    std::vector<u8> seg(60 + payload.size());
    const auto n = build_tcp(seg, kGuestIp, kHost, f, payload);
    EXPECT_TRUE(n);
    seg.resize(*n);
    return ethernet(kGatewayMac, kGuestMac, EtherType::ipv4,
                    ipv4(ip_fields(kGuestIp, kHost, IpProtocol::tcp), seg));
  }
  // Opens 10.0.2.15:40000 -> 10.0.2.2:80 through the NAT; returns the
  // gateway's initial sequence number.
  u32 open_tcp() {
    EXPECT_TRUE(send(tcp(1000, 0, kTcpSyn)).empty());
    SocketEvent e;
    e.kind = SocketEvent::Kind::connected;
    e.socket = 0;
    guest.got.clear();
    machine.deliver_socket_event(e);
    EXPECT_EQ(guest.got.size(), 1u);
    if (guest.got.empty()) return 0;
    const auto eth = EthernetFrame::parse(guest.got[0]);
    const auto ip = Ipv4Packet::parse(eth->payload());
    const auto synack = TcpSegment::parse(*ip);
    EXPECT_TRUE(synack && synack->has(kTcpSyn) && synack->has(kTcpAck));
    const u32 iss = synack->sequence();
    send(tcp(1001, iss + 1, kTcpAck));
    return iss;
  }
  // What reached the host, once the NAT's batch of guest bytes has gone.
  std::vector<u8> host_bytes() {
    machine.clock().advance_idle_to(machine.clock().now_ns() + TcpNat::kFlushDelayNs);
    machine.scheduler().run_due(machine.clock().now_ns());
    std::vector<u8> out;
    for (const auto& s : host.sent) out.insert(out.end(), s.bytes.begin(), s.bytes.end());
    return out;
  }

  test::FakeHostIO host;
  Machine machine;
  Hub hub;
  UserNet net;
  GuestPort guest;
};

TEST_F(UserNetCve, Cve2019_14378_ReassemblyPast65535) {
  const std::vector<u8> piece(1024, 0xab);
  EXPECT_TRUE(send(fragment(piece, 0, true)).empty());
  // Offset 65000 + 1024 bytes: past the largest datagram IPv4 can carry.
  EXPECT_TRUE(send(fragment(piece, 65000 / 8, false)).empty());
  EXPECT_EQ(net.reassembly().counters().dropped_too_long, 1u);
  EXPECT_EQ(net.reassembly().pending(), 0u);
  EXPECT_EQ(net.counters().dropped_ipv4_fragment, 1u);
}

TEST_F(UserNetCve, Cve2020_1983_OverlappingFragments) {
  const std::vector<u8> piece(1024, 0xcd);
  EXPECT_TRUE(send(fragment(piece, 0, true)).empty());
  EXPECT_TRUE(send(fragment(piece, 512 / 8, true)).empty());  // overlaps the first
  EXPECT_TRUE(send(fragment(piece, 1024 / 8, false)).empty());
  EXPECT_EQ(net.reassembly().counters().dropped_overlap, 1u);
  EXPECT_EQ(net.reassembly().counters().reassembled, 0u);
}

TEST_F(UserNetCve, Cve2019_15890_FragmentsThatNeverComplete) {
  const std::vector<u8> piece(1024, 0xef);
  for (u16 id = 1; id <= 40; ++id) send(fragment(piece, 0, true, id));
  // Bounded: 16 datagrams at most, the rest refused, counted.
  EXPECT_EQ(net.reassembly().pending(), 16u);
  EXPECT_EQ(net.reassembly().counters().dropped_memory, 24u);
  machine.clock().advance_idle_to(machine.clock().now_ns() + 31'000'000'000ull);
  guest.got.clear();
  machine.scheduler().run_due(machine.clock().now_ns());
  EXPECT_EQ(net.reassembly().pending(), 0u);
  EXPECT_EQ(net.reassembly().bytes_held(), 0u);
  EXPECT_EQ(guest.got.size(), 16u) << "an ICMP time exceeded per timed-out datagram";
}

TEST_F(UserNetCve, Cve2021_3592_ShortBootp) {
  EXPECT_TRUE(send(udp_frame(0, 0xffffffff, kDhcpClientPort, kDhcpServerPort, std::vector<u8>(10))).empty());
  EXPECT_EQ(net.counters().dropped_dhcp_malformed, 1u);
}

TEST_F(UserNetCve, DhcpOptionsRunningPastThePacket) {
  ClientMessage c;
  std::vector<u8> p = dhcp_payload(c);
  // Cut inside the options, then give the last option a length beyond the end.
  p.resize(240 + 3 + 4);
  p[243] = 55;
  p[244] = 200;
  EXPECT_TRUE(send(udp_frame(0, 0xffffffff, kDhcpClientPort, kDhcpServerPort, p)).empty());
  EXPECT_EQ(net.counters().dropped_dhcp_malformed, 1u);
}

TEST_F(UserNetCve, Cve2021_3594_UdpLengthBeyondTheDatagram) {
  EXPECT_TRUE(send(raw_udp(5000, 53, 400, std::vector<u8>(12))).empty());
  EXPECT_TRUE(send(raw_udp(68, 67, 400, std::vector<u8>(12))).empty());
  EXPECT_TRUE(send(raw_udp(5000, 69, 400, std::vector<u8>(12))).empty());
  EXPECT_EQ(net.counters().dropped_bad_udp, 3u);
  // Shorter than its own header.
  EXPECT_TRUE(send(raw_udp(5000, 53, 4, {})).empty());
  EXPECT_EQ(net.counters().dropped_bad_udp, 4u);
  EXPECT_TRUE(host.sent.empty());
}

TEST_F(UserNetCve, Cve2021_3595_ShortTftp) {
  EXPECT_TRUE(send(udp_frame(kGuestIp, kHost, 5000, 69, std::vector<u8>{0}, kGuestMac, kGatewayMac)).empty());
  EXPECT_TRUE(
      send(udp_frame(kGuestIp, kHost, 5000, 69, std::vector<u8>{0, 1, 'a'}, kGuestMac, kGatewayMac)).empty());
  EXPECT_EQ(net.tftp().counters().dropped_malformed, 2u);
}

TEST_F(UserNetCve, TftpSixHundredByteNameAndMissingFile) {
  std::vector<u8> rrq = {0, 1};
  rrq.insert(rrq.end(), 600, 'a');
  for (const char* s : {"", "octet", ""}) {
    for (const char* c = s; *c; ++c) rrq.push_back(static_cast<u8>(*c));
    if (*s || rrq.back() != 0) rrq.push_back(0);
  }
  EXPECT_EQ(send(udp_frame(kGuestIp, kHost, 5001, 69, rrq, kGuestMac, kGatewayMac)).size(), 1u);
  EXPECT_EQ(net.tftp().counters().refused_name_too_long, 1u);
  const std::vector<u8> missing = {0, 1, 'n', 'o', 0, 'o', 'c', 't', 'e', 't', 0};
  EXPECT_EQ(send(udp_frame(kGuestIp, kHost, 5002, 69, missing, kGuestMac, kGatewayMac)).size(), 1u);
  EXPECT_EQ(net.tftp().counters().refused_not_found, 1u);
  EXPECT_EQ(net.tftp().session_count(), 0u);
}

TEST_F(UserNetCve, UdpFromZeroZero) {
  EXPECT_TRUE(send(udp_frame(0, 0x08080808, 0, 53, std::vector<u8>(8), kGuestMac, kGatewayMac)).empty());
  EXPECT_EQ(net.udp().counters().dropped_bad_source + net.udp().counters().dropped_source_port_zero, 1u);
  EXPECT_TRUE(host.opened.empty());
}

TEST_F(UserNetCve, ShortArp) {
  auto a = arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kHost);
  a.resize(kEthernetHeaderSize + 20);
  EXPECT_TRUE(send(a).empty());
  EXPECT_EQ(net.counters().dropped_bad_arp, 1u);
}

TEST_F(UserNetCve, IcmpEchoShorterThanItsIpLength) {
  auto f = ping_frame(kGuestIp, kHost, 1, 1, std::vector<u8>(32));
  f.resize(f.size() - 20);  // the IP total length now promises 20 bytes more than there are
  EXPECT_TRUE(send(f).empty());
  EXPECT_EQ(net.counters().dropped_ipv4_malformed, 1u);
  // An ICMP message shorter than the echo header.
  std::vector<u8> four = {8, 0, 0, 0};
  store_be16(&four[2], internet_checksum(four));
  EXPECT_TRUE(send(ethernet(kGatewayMac, kGuestMac, EtherType::ipv4,
                            ipv4(ip_fields(kGuestIp, kHost, IpProtocol::icmp), four)))
                  .empty());
  EXPECT_EQ(net.counters().dropped_bad_icmp, 1u);
}

TEST_F(UserNetCve, Ipv6IsNotOurs) {
  EXPECT_TRUE(
      send(ethernet(kGatewayMac, kGuestMac, static_cast<EtherType>(0x86dd), std::vector<u8>(60))).empty());
  EXPECT_EQ(net.counters().dropped_ethertype, 1u);
}

TEST_F(UserNetCve, TcpOutOfOrderToTheEndOfTheQueue) {
  const u32 iss = open_tcp();
  const u32 rcv = 1001;
  std::vector<u8> data(3000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<u8>(i * 7);
  // The window is 65535 from rcv: a segment straddling its end is cut
  // there, one entirely beyond it is not acceptable; neither may write
  // past the queue.
  std::vector<u8> far(1000, 0x55);
  send(tcp(rcv + 65535 - 500, iss + 1, kTcpAck, far));
  send(tcp(rcv + 70000, iss + 1, kTcpAck, far));
  EXPECT_EQ(net.tcp().counters().ooo_trimmed, 1u);
  EXPECT_GE(net.tcp().counters().dropped_not_acceptable, 1u);
  // Ordinary out-of-order delivery still reassembles byte-exact.
  send(tcp(rcv + 1000, iss + 1, kTcpAck, std::span<const u8>(data).subspan(1000, 2000)));
  send(tcp(rcv, iss + 1, kTcpAck, std::span<const u8>(data).first(1000)));
  const auto got = host_bytes();
  ASSERT_GE(got.size(), data.size());
  EXPECT_TRUE(std::equal(data.begin(), data.end(), got.begin()));
}

TEST_F(UserNetCve, TcpUrgentPointerBeyondTheData) {
  const u32 iss = open_tcp();
  const std::vector<u8> data = {'h', 'e', 'l', 'l', 'o'};
  send(tcp(1001, iss + 1, kTcpAck | kTcpUrg | kTcpPsh, data, 60000));
  EXPECT_EQ(host_bytes(), data) << "urgent data is ordinary data; the pointer is ignored";
  // An IRC/FTP-shaped stream is not parsed (no tcp_emu to overflow).
  const std::string port = "PORT 10,0,2,15,4,1\r\n";
  send(tcp(1006, iss + 1, kTcpAck | kTcpPsh, std::vector<u8>(port.begin(), port.end())));
  EXPECT_EQ(host_bytes().size(), data.size() + port.size());
}

TEST_F(UserNetCve, TcpSegmentShorterThanItsHeader) {
  std::vector<u8> seg(12);
  EXPECT_TRUE(send(ethernet(kGatewayMac, kGuestMac, EtherType::ipv4,
                            ipv4(ip_fields(kGuestIp, kHost, IpProtocol::tcp), seg)))
                  .empty());
  EXPECT_EQ(net.tcp().counters().dropped_malformed, 1u);
}

}  // namespace
}  // namespace reel
