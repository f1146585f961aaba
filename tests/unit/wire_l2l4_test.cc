// Link, network and transport wire formats: golden bytes, truncations,
// malformed input and builder round trips (netstack/wire/).

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "netstack/wire/arp.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"

namespace reel::wire {
namespace {

// ---- checksum ----

TEST(WireChecksum, Rfc1071Example) {
  // RFC 1071 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2.
  const std::array<u8, 8> bytes = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  InternetChecksum c;
  c.add(bytes);
  EXPECT_EQ(c.sum(), 0xddf2);
  EXPECT_EQ(c.checksum(), 0x220d);
  EXPECT_EQ(internet_checksum(bytes), 0x220d);
}

TEST(WireChecksum, PiecesOfAnyLengthSumLikeTheWhole) {
  const std::array<u8, 8> bytes = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  for (std::size_t a = 0; a <= bytes.size(); ++a) {
    for (std::size_t b = a; b <= bytes.size(); ++b) {
      InternetChecksum c;
      c.add(std::span(bytes).subspan(0, a));
      c.add(std::span(bytes).subspan(a, b - a));
      c.add(std::span(bytes).subspan(b));
      EXPECT_EQ(c.sum(), 0xddf2) << a << " " << b;
    }
  }
}

// The bulk path reads eight bytes at a time: compare it with the plain
// definition (big-endian 16-bit words, end-around carry) on many lengths,
// split points and all-ones data, where carries pile up.
TEST(WireChecksum, BulkPathMatchesTheDefinition) {
  const auto reference = [](std::span<const u8> b) {
    u64 s = 0;
    for (std::size_t i = 0; i < b.size(); i += 2) s += (u32{b[i]} << 8) | (i + 1 < b.size() ? b[i + 1] : 0);
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<u16>(s);
  };
  std::vector<u8> data(9000);
  u32 x = 12345;
  for (auto& v : data) {
    x = x * 1103515245 + 12345;
    v = static_cast<u8>(x >> 16);
  }
  std::vector<u8> ones(70000, 0xff);
  for (const auto* buf : {&data, &ones}) {
    for (std::size_t len : {0u, 1u, 7u, 8u, 9u, 15u, 16u, 17u, 63u, 1500u, 8999u}) {
      for (std::size_t split : {0u, 1u, 3u, 8u}) {
        if (split > len) continue;
        const std::span<const u8> all = std::span(*buf).first(len);
        InternetChecksum c;
        c.add(all.first(split));
        c.add(all.subspan(split));
        EXPECT_EQ(c.sum(), reference(all)) << len << " split " << split;
      }
    }
  }
  EXPECT_EQ(internet_checksum(ones), static_cast<u16>(~reference(ones)));
}

TEST(WireChecksum, OddLengthPadsWithZero) {
  const std::array<u8, 3> odd = {0x12, 0x34, 0x56};
  // 0x1234 + 0x5600 = 0x6834.
  EXPECT_EQ(internet_checksum(odd), static_cast<u16>(~0x6834));
  const std::array<u8, 0> none = {};
  EXPECT_EQ(internet_checksum(none), 0xffff);
}

TEST(WireChecksum, EndAroundCarry) {
  const std::array<u8, 4> bytes = {0xff, 0xff, 0x00, 0x02};  // 0xffff + 2 = 0x1_0001 -> 0x0002
  InternetChecksum c;
  c.add(bytes);
  EXPECT_EQ(c.sum(), 0x0002);
}

TEST(WireChecksum, KnownIpv4Header) {
  // The header from Wikipedia's / RFC 1071-style worked example:
  // 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
  std::array<u8, 20> h = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                          0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(internet_checksum(h), 0xb861);
  EXPECT_FALSE(internet_checksum_ok(h));
  h[10] = 0xb8;
  h[11] = 0x61;
  EXPECT_TRUE(internet_checksum_ok(h));
}

TEST(WireChecksum, Rfc1624IncrementalUpdate) {
  // RFC 1624 4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives 0x0000 by
  // eqn. 3 (eqn. 2 would give 0xffff).
  EXPECT_EQ(checksum_update(0xdd2f, 0x5555, 0x3285), 0x0000);
}

TEST(WireChecksum, IncrementalMatchesRecomputation) {
  std::array<u8, 20> h = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                          0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  // Rewrite the destination 192.168.0.199 -> 10.0.2.15 (a NAT's job).
  const u16 updated = checksum_update32(0xb861, 0xc0a800c7, 0x0a00020f);
  store_be32(&h[16], 0x0a00020f);
  h[10] = h[11] = 0;
  EXPECT_EQ(updated, internet_checksum(h));
  // And a TTL decrement (the word 0x4011 -> 0x3f11).
  const u16 after_ttl = checksum_update(updated, 0x4011, 0x3f11);
  h[8] = 0x3f;
  EXPECT_EQ(after_ttl, internet_checksum(h));
}

TEST(WireChecksum, PseudoHeader) {
  InternetChecksum c;
  c.add_ipv4_pseudo_header(0x0a00020f, 0x0a000203, 17, 0x0021);
  // 0a00 + 020f + 0a00 + 0203 + 0011 + 0021 = 0x1844
  EXPECT_EQ(c.sum(), 0x1844);
}

TEST(WireChecksum, WordsEqualTheirBytesWhetherAlignedOrNot) {
  // add_u16, add_u32 and the pseudo-header sum words directly when no odd
  // byte is pending; after an odd piece they must still equal the bytes.
  const std::array<u8, 12> pseudo = {0xc0, 0xa8, 0x01, 0xfe, 0x0a, 0x00, 0x02, 0x0f, 0x00, 0x06, 0xff, 0xf1};
  for (const std::size_t lead : {0, 1, 2, 3}) {
    const std::array<u8, 3> prefix = {0xab, 0xcd, 0xef};
    InternetChecksum words;
    words.add(std::span<const u8>(prefix).first(lead));
    words.add_ipv4_pseudo_header(0xc0a801fe, 0x0a00020f, 6, 0xfff1);
    words.add_u32(0xfedcba98);
    words.add_u16(0x8001);
    InternetChecksum bytes;
    bytes.add(std::span<const u8>(prefix).first(lead));
    bytes.add(pseudo);
    bytes.add(std::array<u8, 6>{0xfe, 0xdc, 0xba, 0x98, 0x80, 0x01});
    EXPECT_EQ(words.sum(), bytes.sum()) << "after " << lead << " leading bytes";
  }
}

TEST(WireChecksum, ByteOrder) {
  const std::array<u8, 4> b = {0x12, 0x34, 0x56, 0x78};
  EXPECT_EQ(load_be16(b.data()), 0x1234);
  EXPECT_EQ(load_be32(b.data()), 0x12345678u);
  std::array<u8, 4> out{};
  store_be32(out.data(), 0xdeadbeef);
  EXPECT_EQ(out, (std::array<u8, 4>{0xde, 0xad, 0xbe, 0xef}));
  store_be16(out.data(), 0x0102);
  EXPECT_EQ(out[0], 0x01);
  EXPECT_EQ(out[1], 0x02);
}

// ---- golden frames ----
// Built byte by byte with Python's struct module (not with reel's builders);
// the checksums noted beside each were computed there. Guest 52:54:00:12:34:56
// at 10.0.2.15, gateway 52:55:00:00:00:02 at 10.0.2.2.

// 60 bytes
const std::vector<u8> kArpRequest = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06, 0x00,
    0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x0a, 0x00,
    0x02, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
// 64 bytes
const std::vector<u8> kVlanArpReply = {
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x52, 0x55, 0x00, 0x00, 0x00, 0x02, 0x81, 0x00, 0xa0, 0x64,
    0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x52, 0x55, 0x00, 0x00, 0x00, 0x02,
    0x0a, 0x00, 0x02, 0x02, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x0a, 0x00, 0x02, 0x0f, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
// 98 bytes
const std::vector<u8> kIcmpEcho = {
    0x52, 0x55, 0x00, 0x00, 0x00, 0x02, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x00, 0x45, 0x00, 0x00,
    0x54, 0x3e, 0x5a, 0x40, 0x00, 0x40, 0x01, 0xe4, 0x3e, 0x0a, 0x00, 0x02, 0x0f, 0x0a, 0x00, 0x02, 0x02,
    0x08, 0x00, 0x92, 0x3a, 0x0b, 0x7a, 0x00, 0x01, 0x8c, 0x5f, 0x6a, 0x65, 0x00, 0x00, 0x00, 0x00, 0xa1,
    0xb2, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
    0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a,
    0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
};
// 74 bytes
const std::vector<u8> kTcpSynFrame = {
    0x52, 0x55, 0x00, 0x00, 0x00, 0x02, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x00, 0x45,
    0x00, 0x00, 0x3c, 0xd4, 0x31, 0x40, 0x00, 0x40, 0x06, 0x24, 0xa1, 0x0a, 0x00, 0x02, 0x0f,
    0x5d, 0xb8, 0xd8, 0x22, 0xb2, 0x6e, 0x00, 0x50, 0x9a, 0x3c, 0x1f, 0x27, 0x00, 0x00, 0x00,
    0x00, 0xa0, 0x02, 0xfa, 0xf0, 0xca, 0x92, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02,
    0x08, 0x0a, 0x07, 0x5b, 0xcd, 0x15, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};
// 71 bytes
const std::vector<u8> kUdpDns = {
    0x52, 0x55, 0x00, 0x00, 0x00, 0x02, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x00, 0x45,
    0x00, 0x00, 0x39, 0x6f, 0x01, 0x00, 0x00, 0x40, 0x11, 0xf3, 0xa1, 0x0a, 0x00, 0x02, 0x0f,
    0x0a, 0x00, 0x02, 0x03, 0xcf, 0x84, 0x00, 0x35, 0x00, 0x25, 0x2c, 0x3e, 0x1c, 0x2d, 0x01,
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70,
    0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
};
// 36 bytes
const std::vector<u8> kIpv4RouterAlert = {
    0x46, 0xc0, 0x00, 0x24, 0x00, 0x01, 0x40, 0x00, 0x01, 0x11, 0xf7, 0xde,
    0x0a, 0x00, 0x02, 0x0f, 0xe0, 0x00, 0x00, 0x16, 0x94, 0x04, 0x00, 0x00,
    0x13, 0x88, 0x17, 0x70, 0x00, 0x0c, 0x00, 0x00, 0x70, 0x69, 0x6e, 0x67,
};
// 56 bytes
const std::vector<u8> kIcmpPortUnreachable = {
    0x45, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00, 0x00, 0xff, 0x01, 0xa3, 0xb3, 0x0a, 0x00,
    0x02, 0x03, 0x0a, 0x00, 0x02, 0x0f, 0x03, 0x03, 0x00, 0xe0, 0x00, 0x00, 0x00, 0x00,
    0x45, 0x00, 0x00, 0x39, 0x6f, 0x01, 0x00, 0x00, 0x40, 0x11, 0xf3, 0xa1, 0x0a, 0x00,
    0x02, 0x0f, 0x0a, 0x00, 0x02, 0x03, 0xcf, 0x84, 0x00, 0x35, 0x00, 0x25, 0x2c, 0x3e,
};
// 36 bytes
const std::vector<u8> kIcmpTimeExceeded = {
    0x0b, 0x00, 0x88, 0xdd, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x3c,
    0xd4, 0x31, 0x40, 0x00, 0x40, 0x06, 0x24, 0xa1, 0x0a, 0x00, 0x02, 0x0f,
    0x5d, 0xb8, 0xd8, 0x22, 0xb2, 0x6e, 0x00, 0x50, 0x9a, 0x3c, 0x1f, 0x27,
};
// 44 bytes
const std::vector<u8> kIpv4FirstFragment = {
    0x45, 0x00, 0x00, 0x2c, 0x42, 0x42, 0x20, 0x00, 0x40, 0x11, 0x00, 0x6f, 0x0a, 0x00, 0x02,
    0x0f, 0x0a, 0x00, 0x02, 0x02, 0x13, 0x88, 0x17, 0x70, 0x05, 0xdc, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

constexpr u32 kGuestIp = 0x0a00020f;
constexpr u32 kGatewayIp = 0x0a000202;
constexpr u32 kDnsIp = 0x0a000203;
constexpr MacAddress kGuestMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr MacAddress kGatewayMac = {0x52, 0x55, 0x00, 0x00, 0x00, 0x02};

std::span<const u8> l3(const std::vector<u8>& frame) { return std::span(frame).subspan(14); }

// ---- Ethernet ----

TEST(WireEthernet, GoldenArpRequestFrame) {
  const auto f = EthernetFrame::parse(kArpRequest);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->destination(), kBroadcastMac);
  EXPECT_TRUE(f->is_broadcast());
  EXPECT_TRUE(f->is_multicast());
  EXPECT_EQ(f->source(), kGuestMac);
  EXPECT_EQ(f->ether_type(), 0x0806);
  EXPECT_FALSE(f->has_vlan_tag());
  EXPECT_EQ(f->vlan_id(), 0);
  EXPECT_EQ(f->header_size(), 14u);
  EXPECT_EQ(f->payload().size(), 46u);  // 28 ARP + 18 padding
}

TEST(WireEthernet, VlanTagIsSkipped) {
  const auto f = EthernetFrame::parse(kVlanArpReply);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->has_vlan_tag());
  EXPECT_EQ(f->vlan_id(), 100);
  EXPECT_EQ(f->vlan_priority(), 5);
  EXPECT_EQ(f->ether_type(), 0x0806);
  EXPECT_EQ(f->header_size(), 18u);
  EXPECT_FALSE(f->is_multicast());
  const auto arp = ArpPacket::parse(f->payload());
  ASSERT_TRUE(arp);
  EXPECT_EQ(arp->operation(), ArpOperation::reply);
  EXPECT_EQ(arp->sender_mac(), kGatewayMac);
  EXPECT_EQ(arp->sender_ip(), kGatewayIp);
}

TEST(WireEthernet, Refusals) {
  for (std::size_t n = 0; n < 14; ++n) {
    EXPECT_EQ(EthernetFrame::parse(std::span(kArpRequest).first(n)).error, EthernetError::too_short) << n;
  }
  for (std::size_t n = 14; n < 18; ++n) {
    EXPECT_EQ(EthernetFrame::parse(std::span(kVlanArpReply).first(n)).error, EthernetError::too_short) << n;
  }
  auto stacked = kVlanArpReply;
  stacked[16] = 0x81;
  stacked[17] = 0x00;
  EXPECT_EQ(EthernetFrame::parse(stacked).error, EthernetError::stacked_vlan);
  auto qinq = kArpRequest;
  qinq[12] = 0x88;
  qinq[13] = 0xa8;
  EXPECT_EQ(EthernetFrame::parse(qinq).error, EthernetError::stacked_vlan);
  auto llc = kArpRequest;
  llc[12] = 0x00;
  llc[13] = 0x2e;  // an 802.3 length
  EXPECT_EQ(EthernetFrame::parse(llc).error, EthernetError::not_ethernet_ii);
}

TEST(WireEthernet, BuildRoundTrip) {
  std::array<u8, 64> out{};
  const std::array<u8, 3> payload = {1, 2, 3};
  const auto n = build_ethernet(out, kGatewayMac, kGuestMac, 0x0800, payload);
  ASSERT_EQ(n, 17u);
  const auto f = EthernetFrame::parse(std::span(out).first(*n));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->destination(), kGatewayMac);
  EXPECT_EQ(f->source(), kGuestMac);
  EXPECT_EQ(f->ether_type(), 0x0800);
  EXPECT_TRUE(std::ranges::equal(f->payload(), payload));
  EXPECT_FALSE(build_ethernet(std::span(out).first(16), kGatewayMac, kGuestMac, 0x0800, payload));
}

// ---- ARP ----

TEST(WireArp, GoldenRequest) {
  const auto a = ArpPacket::parse(l3(kArpRequest));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->operation(), ArpOperation::request);
  EXPECT_EQ(a->sender_mac(), kGuestMac);
  EXPECT_EQ(a->sender_ip(), kGuestIp);
  EXPECT_EQ(a->target_mac(), (MacAddress{}));
  EXPECT_EQ(a->target_ip(), kGatewayIp);
}

TEST(WireArp, Refusals) {
  const auto arp = l3(kArpRequest).first(28);
  for (std::size_t n = 0; n < 28; ++n)
    EXPECT_EQ(ArpPacket::parse(arp.first(n)).error, ArpError::too_short) << n;
  for (std::size_t byte : {1, 2, 4, 5}) {
    std::vector<u8> bad(arp.begin(), arp.end());
    bad[byte] ^= 0x10;
    EXPECT_EQ(ArpPacket::parse(bad).error, ArpError::unsupported) << byte;
  }
  std::vector<u8> rarp(arp.begin(), arp.end());
  rarp[7] = 3;
  EXPECT_EQ(ArpPacket::parse(rarp).error, ArpError::bad_operation);
}

TEST(WireArp, BuildMatchesGoldenAndRoundTrips) {
  std::array<u8, 28> out{};
  ArpFields f;
  f.operation = ArpOperation::request;
  f.sender_mac = kGuestMac;
  f.sender_ip = kGuestIp;
  f.target_ip = kGatewayIp;
  ASSERT_EQ(build_arp(out, f), 28u);
  EXPECT_TRUE(std::ranges::equal(out, l3(kArpRequest).first(28)));
  EXPECT_FALSE(build_arp(std::span(out).first(27), f));
}

// ---- IPv4 ----

TEST(WireIpv4, GoldenIcmpEchoPacket) {
  const auto p = Ipv4Packet::parse(l3(kIcmpEcho));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->header_length(), 20u);
  EXPECT_EQ(p->total_length(), 84);
  EXPECT_EQ(p->identification(), 0x3e5a);
  EXPECT_TRUE(p->dont_fragment());
  EXPECT_FALSE(p->more_fragments());
  EXPECT_EQ(p->fragment_offset(), 0);
  EXPECT_FALSE(p->is_fragment());
  EXPECT_EQ(p->ttl(), 64);
  EXPECT_EQ(p->protocol(), 1);
  EXPECT_EQ(p->header_checksum(), 0xe43e);
  EXPECT_EQ(p->source(), kGuestIp);
  EXPECT_EQ(p->destination(), kGatewayIp);
  EXPECT_TRUE(p->options().empty());
  EXPECT_EQ(p->payload().size(), 64u);
}

TEST(WireIpv4, OptionsAndPaddingAfterTotalLength) {
  std::vector<u8> padded = kIpv4RouterAlert;
  padded.resize(46, 0);  // Ethernet minimum payload
  const auto p = Ipv4Packet::parse(padded);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->header_length(), 24u);
  EXPECT_EQ(p->tos(), 0xc0);
  EXPECT_EQ(p->dscp(), 0x30);
  EXPECT_EQ(p->ecn(), 0);
  EXPECT_EQ(p->header_checksum(), 0xf7de);
  EXPECT_EQ(p->destination(), 0xe0000016u);
  EXPECT_EQ(p->ttl(), 1);
  EXPECT_TRUE(std::ranges::equal(p->options(), std::array<u8, 4>{0x94, 0x04, 0x00, 0x00}));
  EXPECT_EQ(p->bytes().size(), 36u);
  EXPECT_EQ(p->payload().size(), 12u);
  const auto u = UdpDatagram::parse(*p);  // checksum 0: none
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->has_checksum());
  EXPECT_EQ(u->source_port(), 5000);
  EXPECT_EQ(u->destination_port(), 6000);
  EXPECT_TRUE(std::ranges::equal(u->payload(), std::string_view("ping")));
}

TEST(WireIpv4, Fragment) {
  const auto p = Ipv4Packet::parse(kIpv4FirstFragment);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->more_fragments());
  EXPECT_EQ(p->fragment_offset(), 0);
  EXPECT_TRUE(p->is_fragment());
  EXPECT_EQ(UdpDatagram::parse(*p).error, UdpError::fragmented);
  EXPECT_EQ(TcpSegment::parse(*p).error, TcpError::not_tcp);
  // A last fragment: MF clear, offset 185 (1480 bytes).
  std::vector<u8> last = kIpv4FirstFragment;
  store_be16(&last[6], 185);
  store_be16(&last[10], 0);
  store_be16(&last[10], internet_checksum(std::span(last).first(20)));
  const auto q = Ipv4Packet::parse(last);
  ASSERT_TRUE(q);
  EXPECT_FALSE(q->more_fragments());
  EXPECT_EQ(q->fragment_offset(), 185);
  EXPECT_EQ(q->fragment_offset_bytes(), 1480u);
  EXPECT_TRUE(q->is_fragment());
}

std::vector<u8> with_fixed_ip_checksum(std::vector<u8> p) {
  const std::size_t ihl = std::size_t{p[0] & 0x0fu} * 4;
  store_be16(&p[10], 0);
  if (p.size() >= ihl) store_be16(&p[10], internet_checksum(std::span(p).first(ihl)));
  return p;
}

TEST(WireIpv4, Refusals) {
  const auto pkt = l3(kIcmpEcho);
  for (std::size_t n = 0; n < 20; ++n)
    EXPECT_EQ(Ipv4Packet::parse(pkt.first(n)).error, Ipv4Error::too_short) << n;
  for (std::size_t n = 20; n < pkt.size(); ++n) {
    EXPECT_EQ(Ipv4Packet::parse(pkt.first(n)).error, Ipv4Error::bad_length) << n;
  }
  // A header with options cut inside them.
  for (std::size_t n = 20; n < 24; ++n) {
    EXPECT_EQ(Ipv4Packet::parse(std::span(kIpv4RouterAlert).first(n)).error, Ipv4Error::too_short) << n;
  }
  std::vector<u8> p(pkt.begin(), pkt.end());
  auto v6 = p;
  v6[0] = 0x65;
  EXPECT_EQ(Ipv4Packet::parse(v6).error, Ipv4Error::bad_version);
  for (u8 ihl = 0; ihl < 5; ++ihl) {
    auto b = p;
    b[0] = static_cast<u8>(0x40 | ihl);
    EXPECT_EQ(Ipv4Packet::parse(b).error, Ipv4Error::bad_ihl) << int{ihl};
  }
  auto shorter = p;
  store_be16(&shorter[2], 19);  // shorter than the header
  EXPECT_EQ(Ipv4Packet::parse(with_fixed_ip_checksum(shorter)).error, Ipv4Error::bad_length);
  auto longer = p;
  store_be16(&longer[2], static_cast<u16>(p.size() + 1));
  EXPECT_EQ(Ipv4Packet::parse(with_fixed_ip_checksum(longer)).error, Ipv4Error::bad_length);
  auto bad_sum = p;
  bad_sum[10] ^= 1;
  EXPECT_EQ(Ipv4Packet::parse(bad_sum).error, Ipv4Error::bad_checksum);
  // Option length 0, length 1 and a length running past the header.
  for (u8 length : {0, 1, 5}) {
    auto o = kIpv4RouterAlert;
    o[21] = length;
    EXPECT_EQ(Ipv4Packet::parse(with_fixed_ip_checksum(o)).error, Ipv4Error::bad_option) << int{length};
  }
  auto lone = kIpv4RouterAlert;  // a type byte with no length byte
  lone[20] = 1;
  lone[21] = 1;
  lone[22] = 1;
  lone[23] = 0x44;
  EXPECT_EQ(Ipv4Packet::parse(with_fixed_ip_checksum(lone)).error, Ipv4Error::bad_option);
  auto eol = lone;  // ...but after EOL anything goes
  eol[22] = 0;
  EXPECT_TRUE(Ipv4Packet::parse(with_fixed_ip_checksum(eol)));
}

TEST(WireIpv4, BuildMatchesGoldenAndRoundTrips) {
  const auto golden = l3(kIcmpEcho);
  std::array<u8, 128> out{};
  Ipv4Fields f;
  f.identification = 0x3e5a;
  f.dont_fragment = true;
  f.protocol = 1;
  f.source = kGuestIp;
  f.destination = kGatewayIp;
  const auto n = build_ipv4(out, f, golden.subspan(20));
  ASSERT_EQ(n, golden.size());
  EXPECT_TRUE(std::ranges::equal(std::span(out).first(*n), golden));

  Ipv4Fields g = f;
  const std::array<u8, 4> ra = {0x94, 0x04, 0x00, 0x00};
  g.options = ra;
  g.more_fragments = true;
  g.fragment_offset = 3;
  g.tos = 0x10;
  const std::array<u8, 5> payload = {9, 8, 7, 6, 5};
  const auto m = build_ipv4(out, g, payload);
  ASSERT_EQ(m, 29u);
  const auto p = Ipv4Packet::parse(std::span(out).first(*m));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->header_length(), 24u);
  EXPECT_TRUE(std::ranges::equal(p->options(), ra));
  EXPECT_TRUE(p->more_fragments());
  EXPECT_EQ(p->fragment_offset(), 3);
  EXPECT_EQ(p->tos(), 0x10);
  EXPECT_TRUE(std::ranges::equal(p->payload(), payload));

  const std::array<u8, 3> odd_options = {1, 1, 1};
  g.options = odd_options;
  EXPECT_FALSE(build_ipv4(out, g, payload));
  g.options = {};
  g.fragment_offset = 0x2000;
  EXPECT_FALSE(build_ipv4(out, g, payload));
  EXPECT_FALSE(build_ipv4(std::span(out).first(24), f, payload));
}

// ---- ICMP ----

TEST(WireIcmp, GoldenEchoRequest) {
  const auto p = Ipv4Packet::parse(l3(kIcmpEcho));
  ASSERT_TRUE(p);
  const auto m = IcmpMessage::parse(p->payload());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), static_cast<u8>(IcmpType::echo_request));
  EXPECT_EQ(m->code(), 0);
  EXPECT_EQ(m->checksum(), 0x923a);
  EXPECT_TRUE(m->is_echo());
  EXPECT_EQ(m->identifier(), 0x0b7a);
  EXPECT_EQ(m->sequence(), 1);
  EXPECT_EQ(m->body().size(), 56u);
  EXPECT_EQ(m->body()[16], 0x10);

  // The reply the gateway sends: same id, seq and data.
  std::array<u8, 64> out{};
  ASSERT_EQ(build_icmp_echo(out, IcmpType::echo_reply, m->identifier(), m->sequence(), m->body()), 64u);
  const auto r = IcmpMessage::parse(out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type(), 0);
  // Only the type changed (8 -> 0): the checksum grows by 0x0800.
  EXPECT_EQ(r->checksum(), 0x923a + 0x0800);
  EXPECT_TRUE(std::ranges::equal(r->body(), m->body()));
  EXPECT_EQ(checksum_update(0x923a, 0x0800, 0x0000), r->checksum());
}

TEST(WireIcmp, GoldenPortUnreachable) {
  const auto p = Ipv4Packet::parse(kIcmpPortUnreachable);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->header_checksum(), 0xa3b3);
  const auto m = IcmpMessage::parse(p->payload());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), static_cast<u8>(IcmpType::destination_unreachable));
  EXPECT_EQ(m->code(), static_cast<u8>(IcmpUnreachableCode::port));
  EXPECT_EQ(m->checksum(), 0x00e0);
  EXPECT_EQ(m->rest_of_header(), 0u);
  // The quote is the DNS query's IP header and UDP header.
  const auto quoted = Ipv4Packet::parse(l3(kUdpDns));
  ASSERT_TRUE(quoted);
  EXPECT_TRUE(std::ranges::equal(m->body(), icmp_error_quote(*quoted)));
  std::array<u8, 64> out{};
  const auto n = build_icmp_error(out, 3, 3, 0, icmp_error_quote(*quoted));
  ASSERT_EQ(n, 36u);
  EXPECT_TRUE(std::ranges::equal(std::span(out).first(*n), p->payload()));
}

TEST(WireIcmp, GoldenTimeExceeded) {
  const auto m = IcmpMessage::parse(kIcmpTimeExceeded);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), static_cast<u8>(IcmpType::time_exceeded));
  EXPECT_EQ(m->code(), static_cast<u8>(IcmpTimeExceededCode::ttl));
  EXPECT_EQ(m->checksum(), 0x88dd);
  EXPECT_FALSE(m->is_echo());
  EXPECT_EQ(m->body().size(), 28u);
}

TEST(WireIcmp, Refusals) {
  const auto msg = l3(kIcmpEcho).subspan(20);
  for (std::size_t n = 0; n < 8; ++n)
    EXPECT_EQ(IcmpMessage::parse(msg.first(n)).error, IcmpError::too_short) << n;
  // Truncations past the header break the checksum over the whole message
  // (removing a run of zero words would not, but this data has none).
  for (std::size_t n = 8; n < msg.size(); ++n) {
    EXPECT_EQ(IcmpMessage::parse(msg.first(n)).error, IcmpError::bad_checksum) << n;
  }
  std::vector<u8> bad(msg.begin(), msg.end());
  bad[40] ^= 0x01;
  EXPECT_EQ(IcmpMessage::parse(bad).error, IcmpError::bad_checksum);
  std::array<u8, 8> out{};
  EXPECT_FALSE(build_icmp_echo(std::span(out).first(7), IcmpType::echo_request, 1, 1, {}));
  EXPECT_EQ(build_icmp_echo(out, IcmpType::echo_request, 1, 1, {}), 8u);
  EXPECT_TRUE(IcmpMessage::parse(out));
}

// ---- UDP ----

TEST(WireUdp, GoldenDnsQuery) {
  const auto p = Ipv4Packet::parse(l3(kUdpDns));
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->dont_fragment());
  EXPECT_EQ(p->header_checksum(), 0xf3a1);
  const auto u = UdpDatagram::parse(*p);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->source_port(), 53124);
  EXPECT_EQ(u->destination_port(), 53);
  EXPECT_EQ(u->length(), 37);
  EXPECT_EQ(u->checksum(), 0x2c3e);
  EXPECT_TRUE(u->has_checksum());
  EXPECT_EQ(u->payload().size(), 29u);
  EXPECT_EQ(u->payload()[0], 0x1c);
  EXPECT_EQ(u->payload()[1], 0x2d);
  // The same datagram claimed from another address fails the pseudo-header.
  EXPECT_EQ(UdpDatagram::parse(p->payload(), kGuestIp, kGatewayIp).error, UdpError::bad_checksum);
  EXPECT_EQ(TcpSegment::parse(*p).error, TcpError::not_tcp);
}

TEST(WireUdp, Refusals) {
  const auto udp = l3(kUdpDns).subspan(20);
  for (std::size_t n = 0; n < 8; ++n) {
    EXPECT_EQ(UdpDatagram::parse(udp.first(n), kGuestIp, kDnsIp).error, UdpError::too_short) << n;
  }
  for (std::size_t n = 8; n < udp.size(); ++n) {
    EXPECT_EQ(UdpDatagram::parse(udp.first(n), kGuestIp, kDnsIp).error, UdpError::bad_length) << n;
  }
  std::vector<u8> b(udp.begin(), udp.end());
  store_be16(&b[4], 7);
  EXPECT_EQ(UdpDatagram::parse(b, kGuestIp, kDnsIp).error, UdpError::bad_length);
  b.assign(udp.begin(), udp.end());
  b[20] ^= 0x20;
  EXPECT_EQ(UdpDatagram::parse(b, kGuestIp, kDnsIp).error, UdpError::bad_checksum);
  store_be16(&b[6], 0);  // no checksum: accepted as is
  EXPECT_TRUE(UdpDatagram::parse(b, kGuestIp, kDnsIp));
}

TEST(WireUdp, BuildMatchesGoldenAndRoundTrips) {
  const auto golden = l3(kUdpDns).subspan(20);
  std::array<u8, 64> out{};
  const auto n = build_udp(out, kGuestIp, kDnsIp, 53124, 53, golden.subspan(8));
  ASSERT_EQ(n, golden.size());
  EXPECT_TRUE(std::ranges::equal(std::span(out).first(*n), golden));
  EXPECT_FALSE(build_udp(std::span(out).first(36), kGuestIp, kDnsIp, 53124, 53, golden.subspan(8)));
  // A datagram whose sum is 0 is sent with checksum 0xffff (RFC 768): with
  // no payload the checksum is ~(pseudo + ports + length); pick ports so it is 0.
  InternetChecksum c;
  c.add_ipv4_pseudo_header(0, 0, 17, 8);
  c.add_u16(8);
  const u16 port = static_cast<u16>(~c.sum());  // makes the total 0xffff
  const auto m = build_udp(out, 0, 0, port, 0, {});
  ASSERT_EQ(m, 8u);
  EXPECT_EQ(load_be16(&out[6]), 0xffff);
  EXPECT_TRUE(UdpDatagram::parse(std::span(out).first(8), 0, 0));
}

TEST(WireUdp, BuildInPlaceThroughEveryLayer) {
  // Assemble a reply inside-out in one buffer: payload, UDP, IPv4, Ethernet.
  std::array<u8, 128> buf{};
  const std::string_view text = "hello";
  std::copy(text.begin(), text.end(), buf.begin() + 14 + 20 + 8);
  const auto u = build_udp(std::span(buf).subspan(34), kDnsIp, kGuestIp, 53, 53124,
                           std::span(buf).subspan(42, text.size()));
  ASSERT_TRUE(u);
  Ipv4Fields f;
  f.protocol = 17;
  f.source = kDnsIp;
  f.destination = kGuestIp;
  const auto i = build_ipv4(std::span(buf).subspan(14), f, std::span(buf).subspan(34, *u));
  ASSERT_TRUE(i);
  const auto e = build_ethernet(buf, kGuestMac, kGatewayMac, 0x0800, std::span(buf).subspan(14, *i));
  ASSERT_EQ(e, 14u + 20 + 8 + 5);
  const auto frame = EthernetFrame::parse(std::span(buf).first(*e));
  ASSERT_TRUE(frame);
  const auto ip = Ipv4Packet::parse(frame->payload());
  ASSERT_TRUE(ip);
  const auto d = UdpDatagram::parse(*ip);
  ASSERT_TRUE(d);
  EXPECT_TRUE(std::ranges::equal(d->payload(), text));
}

// ---- TCP ----

TEST(WireTcp, GoldenSyn) {
  const auto p = Ipv4Packet::parse(l3(kTcpSynFrame));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->header_checksum(), 0x24a1);
  const auto t = TcpSegment::parse(*p);
  ASSERT_TRUE(t) << to_string(t.error);
  EXPECT_EQ(t->source_port(), 45678);
  EXPECT_EQ(t->destination_port(), 80);
  EXPECT_EQ(t->sequence(), 0x9a3c1f27u);
  EXPECT_EQ(t->acknowledgment(), 0u);
  EXPECT_EQ(t->header_length(), 40u);
  EXPECT_EQ(t->flags(), kTcpSyn);
  EXPECT_TRUE(t->has(kTcpSyn));
  EXPECT_FALSE(t->has(kTcpAck));
  EXPECT_EQ(t->window(), 64240);
  EXPECT_EQ(t->checksum(), 0xca92);
  EXPECT_EQ(t->urgent_pointer(), 0);
  EXPECT_TRUE(t->payload().empty());
  EXPECT_EQ(t->sequence_length(), 1u);
  const TcpOptions& o = t->options();
  EXPECT_EQ(o.mss, 1460);
  EXPECT_TRUE(o.sack_permitted);
  ASSERT_TRUE(o.timestamps);
  EXPECT_EQ(o.timestamps->value, 123456789u);
  EXPECT_EQ(o.timestamps->echo_reply, 0u);
  EXPECT_EQ(o.window_scale, 7);
  EXPECT_EQ(o.sack_block_count, 0);
  EXPECT_EQ(o.unknown_count, 0);
}

TEST(WireTcp, BuildMatchesGoldenAndRoundTrips) {
  const auto golden = l3(kTcpSynFrame).subspan(20);
  TcpFields f;
  f.source_port = 45678;
  f.destination_port = 80;
  f.sequence = 0x9a3c1f27;
  f.flags = kTcpSyn;
  f.window = 64240;
  f.options.mss = 1460;
  f.options.sack_permitted = true;
  f.options.timestamps = TcpTimestamps{123456789, 0};
  f.options.window_scale = 7;
  EXPECT_EQ(tcp_header_length(f.options), 40u);
  std::array<u8, 128> out{};
  const auto n = build_tcp(out, kGuestIp, 0x5db8d822, f, {});
  ASSERT_EQ(n, golden.size());
  EXPECT_TRUE(std::ranges::equal(std::span(out).first(*n), golden));

  // ACK with data and two SACK blocks.
  TcpFields g;
  g.source_port = 80;
  g.destination_port = 45678;
  g.sequence = 1;
  g.acknowledgment = 0xfffffff0;
  g.flags = kTcpAck | kTcpPsh | kTcpFin;
  g.window = 502;
  g.options.timestamps = TcpTimestamps{7, 123456789};
  g.options.sack_block_count = 2;
  g.options.sack_blocks[0] = {100, 200};
  g.options.sack_blocks[1] = {300, 400};
  const std::array<u8, 3> data = {'a', 'b', 'c'};
  const auto m = build_tcp(out, 0x5db8d822, kGuestIp, g, data);
  ASSERT_TRUE(m);
  const auto t = TcpSegment::parse(std::span(out).first(*m), 0x5db8d822, kGuestIp);
  ASSERT_TRUE(t) << to_string(t.error);
  EXPECT_EQ(t->options(), g.options);
  EXPECT_EQ(t->flags(), g.flags);
  EXPECT_EQ(t->acknowledgment(), 0xfffffff0u);
  EXPECT_EQ(t->sequence_length(), 4u);
  EXPECT_TRUE(std::ranges::equal(t->payload(), data));

  // Too many options for 40 bytes: MSS 4 + TS 12 + WS 4 + 3 SACK blocks 28.
  g.options.mss = 1460;
  g.options.window_scale = 2;
  g.options.sack_block_count = 3;
  EXPECT_FALSE(tcp_header_length(g.options));
  EXPECT_FALSE(build_tcp(out, 0, 0, g, {}));
  EXPECT_FALSE(build_tcp(std::span(out).first(39), kGuestIp, 0x5db8d822, f, {}));
}

TEST(WireChecksum, AddCopyEqualsCopyThenAdd) {
  std::vector<u8> source(1500);
  for (std::size_t i = 0; i < source.size(); ++i) source[i] = static_cast<u8>(i * 37 + (i >> 8) * 11 + 5);
  for (const std::size_t lead : {0, 1}) {
    for (const std::size_t length : {0, 1, 7, 15, 16, 17, 31, 1459, 1460, 1500}) {
      const std::array<u8, 1> prefix = {0x9c};
      std::vector<u8> copied(length + 3, 0xee);
      InternetChecksum fused;
      fused.add(std::span<const u8>(prefix).first(lead));
      fused.add_copy(copied, std::span<const u8>(source).first(length));
      InternetChecksum plain;
      plain.add(std::span<const u8>(prefix).first(lead));
      plain.add(std::span<const u8>(source).first(length));
      EXPECT_EQ(fused.sum(), plain.sum()) << lead << " + " << length;
      EXPECT_TRUE(
          std::equal(source.begin(), source.begin() + static_cast<std::ptrdiff_t>(length), copied.begin()));
      EXPECT_EQ(copied[length], 0xee) << "wrote past the source's length";
    }
  }
}

TEST(WireTcp, PayloadCopiedInOrInPlaceGivesTheSameSegment) {
  // build_tcp sums a payload from elsewhere as it copies it, and one that
  // already sits in the frame (or overlaps its place) after the header.
  TcpFields f;
  f.source_port = 80;
  f.destination_port = 40000;
  f.sequence = 0x01020304;
  f.acknowledgment = 0xa0b0c0d0;
  f.flags = kTcpAck | kTcpPsh;
  f.window = 8192;
  f.options.timestamps = TcpTimestamps{1, 2};
  const std::size_t header = *tcp_header_length(f.options);
  for (const std::size_t length : {1, 2, 3, 100, 1001, 1460}) {
    std::vector<u8> payload(length);
    for (std::size_t i = 0; i < length; ++i) payload[i] = static_cast<u8>(0xff - i * 3);
    std::vector<u8> apart(header + length);
    const auto a = build_tcp(apart, kGuestIp, 0x0a000202, f, payload);
    std::vector<u8> in_place(header + length);
    std::copy(payload.begin(), payload.end(), in_place.begin() + static_cast<std::ptrdiff_t>(header));
    const auto b =
        build_tcp(in_place, kGuestIp, 0x0a000202, f, std::span<const u8>(in_place).subspan(header, length));
    std::vector<u8> overlapping(2 * header + length);
    std::copy(payload.begin(), payload.end(), overlapping.begin() + static_cast<std::ptrdiff_t>(header / 2));
    const auto c = build_tcp(overlapping, kGuestIp, 0x0a000202, f,
                             std::span<const u8>(overlapping).subspan(header / 2, length));
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(apart, in_place) << length;
    EXPECT_TRUE(std::equal(apart.begin(), apart.end(), overlapping.begin())) << length;
    EXPECT_TRUE(TcpSegment::parse(apart, kGuestIp, 0x0a000202)) << length;
  }
}

std::vector<u8> tcp_with_options(std::span<const u8> options) {
  std::vector<u8> seg(20 + options.size(), 0);
  seg[12] = static_cast<u8>(((20 + options.size()) / 4) << 4);
  for (std::size_t i = 0; i < options.size(); ++i) seg[20 + i] = options[i];
  InternetChecksum c;
  c.add_ipv4_pseudo_header(1, 2, 6, static_cast<u16>(seg.size()));
  c.add(seg);
  store_be16(&seg[16], c.checksum());
  return seg;
}

TEST(WireTcp, OptionEdgeCases) {
  // Unknown option (kind 30, MPTCP) skipped by its length; EOL ends the list.
  const std::array<u8, 8> unknown = {30, 4, 0xaa, 0xbb, 2, 4, 0x05, 0xb4};
  auto t = TcpSegment::parse(tcp_with_options(unknown), 1, 2);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->options().unknown_count, 1);
  EXPECT_EQ(t->options().mss, 1460);
  const std::array<u8, 8> eol = {1, 0, 99, 99, 99, 99, 99, 99};
  t = TcpSegment::parse(tcp_with_options(eol), 1, 2);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->options(), TcpOptions{});
}

TEST(WireTcp, MalformedOptionsRefused) {
  const std::vector<std::vector<u8>> bad = {
      {30, 0, 1, 1},                   // length 0
      {30, 1, 1, 1},                   // length 1
      {1, 1, 30, 3},                   // length past the header
      {1, 1, 1, 2},                    // kind with no length byte
      {2, 3, 0x05, 1},                 // MSS with length 3
      {2, 5, 0x05, 0xb4, 0, 1, 1, 1},  // MSS with length 5
      {3, 4, 7, 1},                    // window scale with length 4
      {4, 3, 0, 1},                    // SACK-permitted with length 3
      {8, 8, 0, 0, 0, 0, 0, 0},        // timestamps with length 8
      {5, 2, 1, 1},                    // SACK with no block
      {5, 6, 0, 0, 0, 0, 1, 1},        // SACK not a multiple of 8
  };
  for (const auto& options : bad) {
    EXPECT_EQ(TcpSegment::parse(tcp_with_options(options), 1, 2).error, TcpError::bad_option)
        << testing::PrintToString(options);
    EXPECT_FALSE(parse_tcp_options(options));
  }
}

TEST(WireTcp, Refusals) {
  const auto seg = l3(kTcpSynFrame).subspan(20);
  const u32 dst = 0x5db8d822;
  for (std::size_t n = 0; n < 20; ++n) {
    EXPECT_EQ(TcpSegment::parse(seg.first(n), kGuestIp, dst).error, TcpError::too_short) << n;
  }
  for (std::size_t n = 20; n < 40; ++n) {
    EXPECT_EQ(TcpSegment::parse(seg.first(n), kGuestIp, dst).error, TcpError::bad_data_offset) << n;
  }
  std::vector<u8> b(seg.begin(), seg.end());
  b[12] = 0x40;  // data offset 4
  EXPECT_EQ(TcpSegment::parse(b, kGuestIp, dst).error, TcpError::bad_data_offset);
  b.assign(seg.begin(), seg.end());
  b[14] ^= 1;
  EXPECT_EQ(TcpSegment::parse(b, kGuestIp, dst).error, TcpError::bad_checksum);
  b.push_back(0);  // a byte of data changes the pseudo-header length too
  EXPECT_EQ(TcpSegment::parse(b, kGuestIp, dst).error, TcpError::bad_checksum);
}

}  // namespace
}  // namespace reel::wire
