// Application-layer wire formats of the user-mode stack: DNS, BOOTP/DHCP,
// TFTP. Golden bytes are written out by hand from the RFC layouts (and, for
// DHCP, modelled on what real clients and libslirp put on the wire); the
// expected fields are read off those bytes independently of the builders.

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/wire/dns.h"

namespace reel::wire {
namespace {

// "12 34 ab" -> bytes; spaces and newlines ignored, "'text'" copies ASCII.
std::vector<u8> hex(std::string_view s) {
  std::vector<u8> out;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '\'') {
      const std::size_t end = s.find('\'', i + 1);
      for (std::size_t j = i + 1; j < end; ++j) out.push_back(static_cast<u8>(s[j]));
      i = end + 1;
      continue;
    }
    if (nib(s[i]) < 0) {
      ++i;
      continue;
    }
    out.push_back(static_cast<u8>(nib(s[i]) * 16 + nib(s[i + 1])));
    i += 2;
  }
  return out;
}

// ------------------------------------------------------------------ DNS --

// dig-style query: id 0x1234, RD, one question www.example.com A IN.
const std::vector<u8> kDnsQuery =
    hex("12 34 01 00 00 01 00 00 00 00 00 00"
        "03 'www' 07 'example' 03 'com' 00 00 01 00 01");

// Its answer: QR RD RA; question echoed at 12; answer 1 is the question
// name (pointer c00c) CNAME to "example.com" (pointer c010, the second label
// of the question); answer 2 is example.com (pointer c010) A 93.184.216.34.
const std::vector<u8> kDnsResponse =
    hex("12 34 81 80 00 01 00 02 00 00 00 00"
        "03 'www' 07 'example' 03 'com' 00 00 01 00 01"
        "c0 0c 00 05 00 01 00 00 0e 10 00 02 c0 10"
        "c0 10 00 01 00 01 00 00 0e 10 00 04 5d b8 d8 22");

TEST(WireDns, ParsesGoldenQuery) {
  auto m = DnsMessage::parse(kDnsQuery);
  ASSERT_TRUE(m) << to_string(m.error);
  EXPECT_EQ(m->id(), 0x1234);
  EXPECT_FALSE(m->is_response());
  EXPECT_TRUE(m->recursion_desired());
  EXPECT_EQ(m->opcode(), 0);
  ASSERT_EQ(m->questions().size(), 1u);
  EXPECT_EQ(m->questions()[0].name, "www.example.com");
  EXPECT_EQ(m->questions()[0].type, 1);
  EXPECT_EQ(m->questions()[0].klass, 1);
  EXPECT_TRUE(m->answers().empty());
  EXPECT_EQ(m->trailing_bytes(), 0u);
}

TEST(WireDns, ParsesGoldenResponseWithPointers) {
  auto m = DnsMessage::parse(kDnsResponse);
  ASSERT_TRUE(m) << to_string(m.error);
  EXPECT_TRUE(m->is_response());
  EXPECT_TRUE(m->recursion_available());
  EXPECT_EQ(m->rcode(), 0);
  ASSERT_EQ(m->answers().size(), 2u);
  const DnsRecord& cname = m->answers()[0];
  EXPECT_EQ(cname.name, "www.example.com");
  EXPECT_EQ(cname.type, 5);
  EXPECT_EQ(cname.ttl, 3600u);
  EXPECT_TRUE(cname.has_target());
  EXPECT_EQ(cname.target, "example.com");
  EXPECT_FALSE(cname.a());
  const DnsRecord& a = m->answers()[1];
  EXPECT_EQ(a.name, "example.com");
  ASSERT_TRUE(a.a());
  EXPECT_EQ(*a.a(), (std::array<u8, 4>{93, 184, 216, 34}));
  EXPECT_FALSE(a.aaaa());
}

TEST(WireDns, EveryTruncationIsRefused) {
  for (std::size_t n = 0; n < kDnsResponse.size(); ++n) {
    auto m = DnsMessage::parse(std::span(kDnsResponse).first(n));
    EXPECT_FALSE(m) << n;
    const DnsError want = n < 12 ? DnsError::too_short : DnsError::truncated;
    EXPECT_EQ(m.error, want) << n << " " << to_string(m.error);
  }
}

TEST(WireDns, PointerLoopsAndForwardPointersAreRefused) {
  // A name that is only a pointer to itself.
  auto self = hex("00 01 00 00 00 01 00 00 00 00 00 00  c0 0c 00 01 00 01");
  EXPECT_EQ(DnsMessage::parse(self).error, DnsError::pointer_loop);
  // A label then a pointer back to that label: backwards, but into its own run.
  auto own = hex("00 01 00 00 00 01 00 00 00 00 00 00  01 'a' c0 0c 00 01 00 01");
  EXPECT_EQ(DnsMessage::parse(own).error, DnsError::pointer_loop);
  // Two names pointing at each other: the first one points forward.
  auto pair = hex("00 01 00 00 00 02 00 00 00 00 00 00  c0 12 00 01 00 01  c0 0c 00 01 00 01");
  EXPECT_EQ(DnsMessage::parse(pair).error, DnsError::pointer_forward);
  auto out = hex("00 01 00 00 00 01 00 00 00 00 00 00  c3 ff 00 01 00 01");
  EXPECT_EQ(DnsMessage::parse(out).error, DnsError::pointer_out_of_range);
  // Reserved label types 01 and 10.
  auto ext = hex("00 01 00 00 00 01 00 00 00 00 00 00  41 00 00 01 00 01");
  EXPECT_EQ(DnsMessage::parse(ext).error, DnsError::bad_label);
  auto ext2 = hex("00 01 00 00 00 01 00 00 00 00 00 00  80 00 00 01 00 01");
  EXPECT_EQ(DnsMessage::parse(ext2).error, DnsError::bad_label);
}

TEST(WireDns, NamesOverTheLimitAreRefused) {
  // 4 labels of 63 bytes: 256 bytes on the wire with the root.
  std::vector<u8> msg = hex("00 01 00 00 00 01 00 00 00 00 00 00");
  for (int l = 0; l < 4; ++l) {
    msg.push_back(63);
    msg.insert(msg.end(), 63, 'x');
  }
  msg.insert(msg.end(), {0, 0, 1, 0, 1});
  EXPECT_EQ(DnsMessage::parse(msg).error, DnsError::name_too_long);
  // Records whose names each add a 63-byte label and point back at the
  // previous record's name: the fourth one decodes to 257 bytes.
  std::vector<u8> chain = hex("00 01 80 00 00 00 00 04 00 00 00 00");
  std::size_t prev = 0;
  for (int i = 0; i < 4; ++i) {
    const std::size_t here = chain.size();
    chain.push_back(63);
    chain.insert(chain.end(), 63, 'z');
    if (i == 0) {
      chain.push_back(0);
    } else {
      chain.push_back(static_cast<u8>(0xc0 | (prev >> 8)));
      chain.push_back(static_cast<u8>(prev));
    }
    chain.insert(chain.end(), {0, 16, 0, 1, 0, 0, 0, 0, 0, 0});
    prev = here;
  }
  EXPECT_EQ(DnsMessage::parse(chain).error, DnsError::name_too_long);
  chain[7] = 3;  // three records stop at 193 bytes
  auto three = DnsMessage::parse(chain);
  ASSERT_TRUE(three) << to_string(three.error);
  EXPECT_EQ(three->answers()[2].name.size(), 3u * 63 + 2);
  EXPECT_GT(three->trailing_bytes(), 0u);
}

TEST(WireDns, BadRdataSizesAreRefused) {
  auto a3 = hex("00 01 80 00 00 00 00 01 00 00 00 00  00 00 01 00 01 00 00 00 00 00 03 01 02 03");
  EXPECT_EQ(DnsMessage::parse(a3).error, DnsError::bad_rdata);
  auto aaaa4 = hex("00 01 80 00 00 00 00 01 00 00 00 00  00 00 1c 00 01 00 00 00 00 00 04 01 02 03 04");
  EXPECT_EQ(DnsMessage::parse(aaaa4).error, DnsError::bad_rdata);
  // CNAME rdata with a name and a stray byte after it.
  auto cname = hex("00 01 80 00 00 00 00 01 00 00 00 00  00 00 05 00 01 00 00 00 00 00 04 01 'a' 00 ff");
  EXPECT_EQ(DnsMessage::parse(cname).error, DnsError::bad_rdata);
}

TEST(WireDns, QueryBuilderMatchesGoldenBytes) {
  std::array<u8, 512> buf{};
  auto n = build_dns_query(buf, 0x1234, "www.example.com", DnsType::a, DnsRecursion::desired);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::vector<u8>(buf.begin(), buf.begin() + *n), kDnsQuery);
  // Every buffer shorter than the message is refused.
  for (std::size_t len = 0; len < kDnsQuery.size(); ++len) {
    EXPECT_FALSE(
        build_dns_query(std::span(buf).first(len), 1, "www.example.com", DnsType::a, DnsRecursion::desired))
        << len;
  }
  EXPECT_FALSE(build_dns_query(buf, 1, "a..b", DnsType::a, DnsRecursion::desired));
  EXPECT_FALSE(build_dns_query(buf, 1, std::string(64, 'x'), DnsType::a, DnsRecursion::desired));
}

TEST(WireDns, ResponseBuilderMatchesGoldenBytes) {
  const std::array<u8, 4> addr{93, 184, 216, 34};
  const DnsAnswer answers[] = {
      {.name = "www.example.com",
       .type = DnsType::cname,
       .ttl = 3600,
       .address = {},
       .target = "example.com"},
      {.name = "example.com", .type = DnsType::a, .ttl = 3600, .address = addr, .target = {}},
  };
  DnsResponse r{.id = 0x1234,
                .recursion = DnsRecursion::desired,
                .rcode = 0,
                .question_name = "www.example.com",
                .question_type = DnsType::a,
                .answers = answers};
  std::array<u8, 512> buf{};
  auto n = build_dns_response(buf, r);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::vector<u8>(buf.begin(), buf.begin() + *n), kDnsResponse);
  for (std::size_t len = 0; len < kDnsResponse.size(); ++len) {
    EXPECT_FALSE(build_dns_response(std::span(buf).first(len), r)) << len;
  }
}

TEST(WireDns, RoundTripsAaaaAndPtr) {
  std::array<u8, 16> v6{};
  v6[0] = 0xfe;
  v6[1] = 0xc0;
  v6[15] = 3;
  const DnsAnswer answers[] = {
      {.name = "host.Example.org.", .type = DnsType::aaaa, .ttl = 5, .address = v6, .target = {}},
      {.name = "3.2.0.10.in-addr.arpa",
       .type = DnsType::ptr,
       .ttl = 6,
       .address = {},
       .target = "host.example.org"},
  };
  DnsResponse r{.id = 7,
                .rcode = 3,
                .question_name = "host.example.org",
                .question_type = DnsType::aaaa,
                .answers = answers};
  std::array<u8, 512> buf{};
  auto n = build_dns_response(buf, r);
  ASSERT_TRUE(n);
  auto m = DnsMessage::parse(std::span(buf).first(*n));
  ASSERT_TRUE(m) << to_string(m.error);
  EXPECT_EQ(m->id(), 7);
  EXPECT_EQ(m->rcode(), 3);
  ASSERT_EQ(m->answers().size(), 2u);
  // Compression matches case-insensitively, so the answer name points at the question.
  EXPECT_EQ(m->answers()[0].name, "host.example.org");
  EXPECT_EQ(*m->answers()[0].aaaa(), v6);
  EXPECT_EQ(m->answers()[1].name, "3.2.0.10.in-addr.arpa");
  EXPECT_EQ(m->answers()[1].target, "host.example.org");
  EXPECT_EQ(m->answers()[1].ttl, 6u);
}

// RFC 3397 section 4's example: "eng.apple.com." and "marketing.apple.com.".
TEST(WireDns, DomainSearchEncodingMatchesRfc3397Example) {
  const std::string_view names[] = {"eng.apple.com", "marketing.apple.com"};
  std::array<u8, 64> buf{};
  auto n = encode_dns_names(names, buf, DnsCompression::on);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::vector<u8>(buf.begin(), buf.begin() + *n),
            hex("03 'eng' 05 'apple' 03 'com' 00  09 'marketing' c0 04"));
  n = encode_dns_names(names, buf, DnsCompression::off);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::vector<u8>(buf.begin(), buf.begin() + *n),
            hex("03 'eng' 05 'apple' 03 'com' 00  09 'marketing' 05 'apple' 03 'com' 00"));
}

}  // namespace
}  // namespace reel::wire
