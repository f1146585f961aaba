// Link, network and transport wire formats: golden bytes, truncations,
// malformed input and builder round trips (netstack/wire/).

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "netstack/wire/checksum.h"

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

}  // namespace
}  // namespace reel::wire
