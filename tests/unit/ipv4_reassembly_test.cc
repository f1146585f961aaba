// IPv4 reassembly: in-order and shuffled pieces, the bounds (datagrams,
// bytes, fragments per datagram, 65535), overlaps (libslirp's CVE history
// and FragmentSmack-style sequences), the timeout on the virtual clock and
// the ICMP quote it returns, and a state round trip.

#include "netstack/ipv4_reassembly.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "netstack/wire/checksum.h"
#include "netstack/wire/ipv4.h"

namespace reel {
namespace {

using wire::Ipv4Packet;

constexpr u64 kSecond = 1'000'000'000;

std::vector<u8> pattern(std::size_t n, u8 seed = 1) {
  std::vector<u8> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<u8>(seed + i * 7);
  return v;
}

// One fragment of `whole` (the datagram's payload): bytes [offset, offset+len).
std::vector<u8> fragment(const std::vector<u8>& whole, u32 offset, u32 len, bool more, u16 id = 0x4242,
                         u32 src = 0x0a00020f) {
  wire::Ipv4Fields f;
  f.identification = id;
  f.more_fragments = more;
  f.fragment_offset = static_cast<u16>(offset / 8);
  f.protocol = 17;
  f.source = src;
  f.destination = 0x0a000202;
  std::vector<u8> out(20 + len);
  const auto n = wire::build_ipv4(out, f, std::span<const u8>(whole).subspan(offset, len));
  EXPECT_TRUE(n);
  return out;
}

std::optional<std::vector<u8>> feed(Ipv4Reassembly& r, const std::vector<u8>& bytes, u64 now = 0) {
  const auto ip = Ipv4Packet::parse(bytes);
  EXPECT_TRUE(ip) << "test fragment does not parse";
  if (!ip) return std::nullopt;
  return r.add(*ip, now);
}

void expect_whole(const std::optional<std::vector<u8>>& got, const std::vector<u8>& payload) {
  ASSERT_TRUE(got);
  const auto ip = Ipv4Packet::parse(*got);
  ASSERT_TRUE(ip) << "reassembled datagram does not parse";
  EXPECT_FALSE(ip->is_fragment());
  EXPECT_EQ(ip->identification(), 0x4242);
  EXPECT_EQ(ip->total_length(), 20 + payload.size());
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), ip->payload().begin(), ip->payload().end()));
}

TEST(Ipv4Reassembly, InOrderPiecesMakeTheDatagram) {
  Ipv4Reassembly r;
  const auto data = pattern(3000);
  EXPECT_FALSE(feed(r, fragment(data, 0, 1480, true)));
  EXPECT_FALSE(feed(r, fragment(data, 1480, 1480, true)));
  expect_whole(feed(r, fragment(data, 2960, 40, false)), data);
  EXPECT_EQ(r.pending(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);
  EXPECT_EQ(r.counters().reassembled, 1u);
}

TEST(Ipv4Reassembly, ShuffledPiecesAndRepeats) {
  Ipv4Reassembly r;
  const auto data = pattern(4001);
  EXPECT_FALSE(feed(r, fragment(data, 4000, 1, false)));
  EXPECT_FALSE(feed(r, fragment(data, 1000, 1000, true)));
  EXPECT_FALSE(feed(r, fragment(data, 1000, 1000, true)));  // an exact repeat is harmless
  EXPECT_FALSE(feed(r, fragment(data, 3000, 1000, true)));
  EXPECT_FALSE(feed(r, fragment(data, 0, 1000, true)));
  expect_whole(feed(r, fragment(data, 2000, 1000, true)), data);
  EXPECT_EQ(r.counters().duplicates, 1u);
}

TEST(Ipv4Reassembly, DatagramsAreKeptApartById) {
  Ipv4Reassembly r;
  const auto a = pattern(1600, 1);
  const auto b = pattern(1600, 9);
  EXPECT_FALSE(feed(r, fragment(a, 0, 800, true, 1)));
  EXPECT_FALSE(feed(r, fragment(b, 0, 800, true, 2)));
  auto whole_b = feed(r, fragment(b, 800, 800, false, 2));
  ASSERT_TRUE(whole_b);
  EXPECT_EQ(Ipv4Packet::parse(*whole_b)->identification(), 2);
  EXPECT_EQ(r.pending(), 1u);
}

TEST(Ipv4Reassembly, OverlapDiscardsTheDatagram) {
  Ipv4Reassembly r;
  const auto data = pattern(2400);
  EXPECT_FALSE(feed(r, fragment(data, 0, 1600, true)));
  // Starts inside the first piece: a rewrite attempt.
  EXPECT_FALSE(feed(r, fragment(data, 800, 1600, false)));
  EXPECT_EQ(r.counters().dropped_overlap, 1u);
  EXPECT_EQ(r.pending(), 0u);
  // The rest of the original sequence cannot complete it any more.
  EXPECT_FALSE(feed(r, fragment(data, 1600, 800, false)));
  EXPECT_EQ(r.counters().reassembled, 0u);
}

TEST(Ipv4Reassembly, SameOffsetDifferentBytesIsAnOverlap) {
  Ipv4Reassembly r;
  auto data = pattern(1600);
  EXPECT_FALSE(feed(r, fragment(data, 0, 800, true)));
  data[10] ^= 0xff;
  EXPECT_FALSE(feed(r, fragment(data, 0, 800, true)));
  EXPECT_EQ(r.counters().dropped_overlap, 1u);
}

TEST(Ipv4Reassembly, ContradictingEndsAreRefused) {
  Ipv4Reassembly r;
  const auto data = pattern(4000);
  EXPECT_FALSE(feed(r, fragment(data, 2000, 1000, true)));
  // A last fragment ending before a piece already held.
  EXPECT_FALSE(feed(r, fragment(data, 0, 800, false)));
  EXPECT_EQ(r.counters().dropped_bad_fragment, 1u);
  EXPECT_EQ(r.pending(), 0u);
  // A non-final piece beyond a known end.
  EXPECT_FALSE(feed(r, fragment(data, 800, 800, false, 9)));
  EXPECT_FALSE(feed(r, fragment(data, 1600, 800, true, 9)));
  EXPECT_EQ(r.counters().dropped_bad_fragment, 2u);
}

TEST(Ipv4Reassembly, NonFinalFragmentsAreMultiplesOfEight) {
  Ipv4Reassembly r;
  const auto data = pattern(100);
  EXPECT_FALSE(feed(r, fragment(data, 0, 12, true)));
  EXPECT_EQ(r.counters().dropped_bad_fragment, 1u);
  EXPECT_EQ(r.pending(), 0u);
}

TEST(Ipv4Reassembly, GrowingBeyond65535IsRefused) {
  Ipv4Reassembly r;
  const auto data = pattern(65528 + 100);
  EXPECT_FALSE(feed(r, fragment(data, 0, 8, true)));
  // Offset 65520 + 100 bytes + 20 header > 65535 (the ping-of-death shape).
  EXPECT_FALSE(feed(r, fragment(data, 65520, 100, false)));
  EXPECT_EQ(r.counters().dropped_too_long, 1u);
  EXPECT_EQ(r.pending(), 0u);
}

TEST(Ipv4Reassembly, MemoryIsBounded) {
  Ipv4Reassembly::Limits limits;
  limits.max_datagrams = 4;
  limits.max_bytes = 4000;
  limits.max_fragments = 8;
  Ipv4Reassembly r(limits);
  const auto data = pattern(20000);
  // Datagrams that never complete fill the table, then the next is refused.
  for (u16 id = 1; id <= 4; ++id) EXPECT_FALSE(feed(r, fragment(data, 0, 800, true, id)));
  EXPECT_FALSE(feed(r, fragment(data, 0, 800, true, 5)));
  EXPECT_EQ(r.counters().dropped_memory, 1u);
  EXPECT_EQ(r.pending(), 4u);
  // The byte budget: 3200 held, another 1600 is too much.
  EXPECT_FALSE(feed(r, fragment(data, 800, 1600, true, 1)));
  EXPECT_EQ(r.counters().dropped_memory, 2u);
  EXPECT_LE(r.bytes_held(), limits.max_bytes);

  // Fragments per datagram.
  Ipv4Reassembly small(limits);
  for (u32 i = 0; i < 8; ++i) EXPECT_FALSE(feed(small, fragment(data, i * 16, 8, true)));
  EXPECT_FALSE(feed(small, fragment(data, 8 * 16, 8, true)));
  EXPECT_EQ(small.counters().dropped_too_many_fragments, 1u);
  EXPECT_EQ(small.pending(), 0u);
}

TEST(Ipv4Reassembly, TimeoutOnTheVirtualClockQuotesTheFirstFragment) {
  Ipv4Reassembly r;
  const auto data = pattern(3000);
  const auto first = fragment(data, 0, 1480, true, 7);
  EXPECT_FALSE(feed(r, first, 5 * kSecond));
  EXPECT_FALSE(feed(r, fragment(data, 1480, 1480, true, 8), 6 * kSecond));  // no first fragment
  ASSERT_TRUE(r.next_deadline());
  EXPECT_EQ(*r.next_deadline(), 35 * kSecond);
  EXPECT_TRUE(r.expire(35 * kSecond - 1).empty());
  const auto quotes = r.expire(35 * kSecond);
  ASSERT_EQ(quotes.size(), 1u);
  EXPECT_EQ(quotes[0].size(), 28u);  // header + 8 bytes
  EXPECT_TRUE(std::equal(quotes[0].begin(), quotes[0].end(), first.begin()));
  EXPECT_EQ(r.pending(), 1u);
  EXPECT_TRUE(r.expire(36 * kSecond).empty());  // the second had no first fragment
  EXPECT_EQ(r.counters().dropped_timeout, 2u);
  EXPECT_FALSE(r.next_deadline());
  EXPECT_EQ(r.bytes_held(), 0u);
}

TEST(Ipv4Reassembly, StateRoundTrips) {
  Ipv4Reassembly r;
  const auto data = pattern(3000);
  EXPECT_FALSE(feed(r, fragment(data, 0, 1480, true)));
  EXPECT_FALSE(feed(r, fragment(data, 2960, 40, false)));
  std::stringstream s;
  {
    BinaryOut out(s);
    r.serialize(out);
  }
  Ipv4Reassembly copy;
  {
    BinaryIn in(s);
    copy.serialize(in);
  }
  EXPECT_EQ(copy.pending(), 1u);
  EXPECT_EQ(copy.bytes_held(), r.bytes_held());
  expect_whole(feed(copy, fragment(data, 1480, 1480, true)), data);
}

}  // namespace
}  // namespace reel
