// Application-layer wire formats of the user-mode stack: DNS, BOOTP/DHCP,
// TFTP. Golden bytes are written out by hand from the RFC layouts (and, for
// DHCP, modelled on what real clients and libslirp put on the wire); the
// expected fields are read off those bytes independently of the builders.

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/wire/dhcp.h"
#include "netstack/wire/dns.h"
#include "netstack/wire/tftp.h"

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

std::vector<u8> cat(std::initializer_list<std::vector<u8>> parts) {
  std::vector<u8> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<u8> zeros(std::size_t n) { return std::vector<u8>(n, 0); }

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

// ----------------------------------------------------------------- DHCP --

// A DISCOVER laid out the way isc-dhclient 4.4 (Debian) sends one after a
// reboot with a remembered lease: no flags, chaddr 52:54:00:12:34:56,
// options 53 DISCOVER, 50 requested 10.0.2.15, 12 "debian", 55 its
// parameter list, end, zero padding to 300 bytes.
const std::vector<u8> kDiscoverNoPad = cat({
    hex("01 01 06 00  39 03 f3 26  00 00 00 00"),
    zeros(16),
    hex("52 54 00 12 34 56"),
    zeros(10 + 64 + 128),
    hex("63 82 53 63"
        "35 01 01"
        "32 04 0a 00 02 0f"
        "0c 06 'debian'"
        "37 0d 01 1c 02 03 0f 06 77 0c 2c 2f 1a 79 2a"
        "ff"),
});
const std::vector<u8> kDiscover = cat({kDiscoverNoPad, zeros(300 - 273)});

// The OFFER libslirp sends for it on 10.0.2.0/24: op 2, yiaddr 10.0.2.15,
// siaddr 10.0.2.2, options 53 OFFER, 54 10.0.2.2, 1 255.255.255.0,
// 3 10.0.2.2, 6 10.0.2.3, 51 86400 s, end, zeros to its 548-byte struct.
const std::vector<u8> kOffer = cat({
    hex("02 01 06 00  39 03 f3 26  00 00 00 00"
        "00 00 00 00  0a 00 02 0f  0a 00 02 02  00 00 00 00"
        "52 54 00 12 34 56"),
    zeros(10 + 64 + 128),
    hex("63 82 53 63"
        "35 01 02"
        "36 04 0a 00 02 02"
        "01 04 ff ff ff 00"
        "03 04 0a 00 02 02"
        "06 04 0a 00 02 03"
        "33 04 00 01 51 80"
        "ff"),
    zeros(548 - 274),
});

TEST(WireDhcp, ParsesGoldenDiscover) {
  ASSERT_EQ(kDiscover.size(), 300u);
  auto m = DhcpMessage::parse(kDiscover);
  ASSERT_TRUE(m) << to_string(m.error);
  EXPECT_EQ(m->op(), 1);
  EXPECT_EQ(m->htype(), 1);
  EXPECT_EQ(m->hlen(), 6);
  EXPECT_EQ(m->xid(), 0x3903f326u);
  EXPECT_FALSE(m->broadcast_flag());
  EXPECT_EQ(m->ciaddr(), 0u);
  EXPECT_EQ(std::vector<u8>(m->hardware_address().begin(), m->hardware_address().end()),
            hex("52 54 00 12 34 56"));
  EXPECT_EQ(m->overload(), 0);
  EXPECT_EQ(m->message_type(), DhcpMessageType::discover);
  EXPECT_EQ(m->requested_ip(), 0x0a00020fu);
  EXPECT_EQ(m->hostname(), "debian");
  ASSERT_TRUE(m->parameter_request_list());
  EXPECT_EQ(std::vector<u8>(m->parameter_request_list()->begin(), m->parameter_request_list()->end()),
            hex("01 1c 02 03 0f 06 77 0c 2c 2f 1a 79 2a"));
  EXPECT_FALSE(m->server_id());
  EXPECT_FALSE(m->client_id());
  EXPECT_FALSE(m->max_message_size());
  EXPECT_FALSE(m->lease_time());
  std::vector<u8> codes;
  for (DhcpOption o : *m) codes.push_back(o.code);
  EXPECT_EQ(codes, (std::vector<u8>{53, 50, 12, 55}));
}

TEST(WireDhcp, EveryTruncationIsRefusedOrEndsOnAnOptionBoundary) {
  for (std::size_t n = 0; n <= kDiscoverNoPad.size(); ++n) {
    auto m = DhcpMessage::parse(std::span(kDiscoverNoPad).first(n));
    if (n < 240) {
      EXPECT_EQ(m.error, DhcpError::too_short) << n;
    } else if (n == 240 || n == 243 || n == 249 || n == 257 || n == 272 || n == 273) {
      // Cut between options: a packet without an end option is accepted.
      EXPECT_TRUE(m) << n << " " << to_string(m.error);
    } else {
      EXPECT_EQ(m.error, DhcpError::option_overrun) << n;
    }
  }
}

TEST(WireDhcp, OptionsRunningPastThePacketAreRefused) {
  auto bad = kDiscoverNoPad;
  bad[258] = 0x0f;  // option 55 claims 15 bytes; 13 and the end option remain
  EXPECT_EQ(DhcpMessage::parse(bad).error, DhcpError::option_overrun);
  // A code as the very last byte, with no length.
  auto lone = cat({std::vector<u8>(kDiscoverNoPad.begin(), kDiscoverNoPad.end() - 1), hex("0c")});
  EXPECT_EQ(DhcpMessage::parse(lone).error, DhcpError::option_overrun);
  // The same option 55 inside a 300-byte padded packet is fine: the padding is inside the packet.
  auto padded = kDiscover;
  padded[258] = 0x0f;
  EXPECT_TRUE(DhcpMessage::parse(padded));
}

TEST(WireDhcp, BadCookieHardwareAndOptionSizesAreRefused) {
  auto cookie = kDiscover;
  cookie[239] = 0x64;
  EXPECT_EQ(DhcpMessage::parse(cookie).error, DhcpError::bad_cookie);
  auto hlen = kDiscover;
  hlen[2] = 17;
  EXPECT_EQ(DhcpMessage::parse(hlen).error, DhcpError::bad_hardware);
  auto type = kDiscover;
  type[241] = 2;  // message type of two bytes
  EXPECT_EQ(DhcpMessage::parse(type).error, DhcpError::bad_option_length);
  auto req = kDiscover;
  req[244] = 3;  // requested IP of three bytes
  EXPECT_EQ(DhcpMessage::parse(req).error, DhcpError::bad_option_length);
}

TEST(WireDhcp, OverloadedFileAndSnameAreOptionAreas) {
  auto m = cat({
      hex("01 01 06 00  00 00 00 01  00 00 80 00"),
      zeros(16),
      hex("52 54 00 12 34 56"),
      zeros(10),
      hex("0c 02 'hi' ff"),  // sname
      zeros(64 - 5),
      hex("00 00 35 01 03 36 04 0a 00 02 02 ff"),  // file
      zeros(128 - 12),
      hex("63 82 53 63  34 01 03  39 02 05 dc  ff"),
  });
  auto p = DhcpMessage::parse(m);
  ASSERT_TRUE(p) << to_string(p.error);
  EXPECT_TRUE(p->broadcast_flag());
  EXPECT_EQ(p->overload(), 3);
  EXPECT_EQ(p->message_type(), DhcpMessageType::request);
  EXPECT_EQ(p->server_id(), 0x0a000202u);
  EXPECT_EQ(p->hostname(), "hi");
  EXPECT_EQ(p->max_message_size(), 1500);
  std::vector<u8> codes;
  for (DhcpOption o : *p) codes.push_back(o.code);
  EXPECT_EQ(codes, (std::vector<u8>{52, 57, 53, 54, 12}));
  // An option running past the end of the file field is refused even
  // though the packet continues.
  auto over = m;
  over[108 + 11] = 0;  // the file area's end option becomes padding
  over[108 + 126] = 0x0c;
  over[108 + 127] = 0x05;
  EXPECT_EQ(DhcpMessage::parse(over).error, DhcpError::option_overrun);
  // Without option 52 the same file bytes are a name and are not checked.
  auto plain = over;
  plain[240] = 0;
  plain[241] = 0;
  plain[242] = 0;
  auto q = DhcpMessage::parse(plain);
  ASSERT_TRUE(q) << to_string(q.error);
  EXPECT_FALSE(q->message_type());
}

DhcpReplyHeader offer_header() {
  DhcpReplyHeader h;
  h.xid = 0x3903f326;
  h.yiaddr = 0x0a00020f;
  h.siaddr = 0x0a000202;
  h.chaddr = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  return h;
}

TEST(WireDhcp, ParsesGoldenOffer) {
  auto m = DhcpMessage::parse(kOffer);
  ASSERT_TRUE(m) << to_string(m.error);
  EXPECT_EQ(m->op(), 2);
  EXPECT_EQ(m->yiaddr(), 0x0a00020fu);
  EXPECT_EQ(m->siaddr(), 0x0a000202u);
  EXPECT_EQ(m->message_type(), DhcpMessageType::offer);
  EXPECT_EQ(m->server_id(), 0x0a000202u);
  EXPECT_EQ(m->lease_time(), 86400u);
  ASSERT_TRUE(m->option(6));
  EXPECT_EQ(std::vector<u8>(m->option(6)->begin(), m->option(6)->end()), hex("0a 00 02 03"));
}

TEST(WireDhcp, BuilderMatchesGoldenOffer) {
  std::array<u8, 600> buf{};
  buf.fill(0xee);  // the builder must write every byte it reports
  const u32 dns[] = {0x0a000203};
  auto n = DhcpReplyBuilder(buf, offer_header())
               .message_type(DhcpMessageType::offer)
               .server_id(0x0a000202)
               .subnet_mask(0xffffff00)
               .router(0x0a000202)
               .dns_servers(dns)
               .lease_time(86400)
               .finish(548);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::vector<u8>(buf.begin(), buf.begin() + *n), kOffer);
  // Too small for the padded size, or for the header.
  EXPECT_FALSE(DhcpReplyBuilder(std::span(buf).first(547), offer_header()).finish(548));
  EXPECT_FALSE(DhcpReplyBuilder(std::span(buf).first(239), offer_header()).finish(0));
  // The default pads to BOOTP's 300 bytes.
  auto m = DhcpReplyBuilder(buf, offer_header()).message_type(DhcpMessageType::ack).finish();
  EXPECT_EQ(m, 300u);
}

TEST(WireDhcp, BuilderRoundTripsEveryOptionAndSplitsLongDomainSearch) {
  std::vector<std::string> storage;
  for (int i = 0; i < 12; ++i)
    storage.push_back("sub" + std::to_string(i) + "." + std::string(20, 'd') + ".example.org");
  std::vector<std::string_view> search(storage.begin(), storage.end());
  std::array<u8, 1500> buf{};
  DhcpReplyHeader h = offer_header();
  h.file = "pxelinux.0";
  h.sname = "tftp.local";
  const u32 dns[] = {0x0a000203, 0x08080808};
  auto n = DhcpReplyBuilder(buf, h)
               .subnet_mask(0xffffff00)
               .router(0x0a000202)
               .dns_servers(dns)
               .hostname("guest")
               .domain_name("example.org")
               .broadcast(0x0a0002ff)
               .lease_time(3600)
               .server_id(0x0a000202)
               .domain_search(search, DnsCompression::off)
               .tftp_server_name("10.0.2.2")
               .bootfile_name("pxelinux.0")
               .message_type(DhcpMessageType::ack)
               .finish();
  ASSERT_TRUE(n);
  auto m = DhcpMessage::parse(std::span(buf).first(*n));
  ASSERT_TRUE(m) << to_string(m.error);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(m->file().data())), "pxelinux.0");
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(m->sname().data())), "tftp.local");
  EXPECT_EQ(m->hostname(), "guest");
  EXPECT_EQ(m->lease_time(), 3600u);
  EXPECT_EQ(m->message_type(), DhcpMessageType::ack);
  std::vector<u8> codes, search_bytes;
  for (DhcpOption o : *m) {
    codes.push_back(o.code);
    if (o.code == 119) search_bytes.insert(search_bytes.end(), o.value.begin(), o.value.end());
  }
  std::array<u8, 1500> want{};
  auto wn = encode_dns_names(search, want, DnsCompression::off);
  ASSERT_TRUE(wn);
  ASSERT_GT(*wn, 255u);
  ASSERT_LE(*wn, 510u);
  EXPECT_EQ(search_bytes, std::vector<u8>(want.begin(), want.begin() + *wn));
  EXPECT_EQ(codes, (std::vector<u8>{1, 3, 6, 12, 15, 28, 51, 54, 119, 119, 66, 67, 53}));

  // Failures are sticky and clean.
  EXPECT_FALSE(
      DhcpReplyBuilder(buf, h).hostname(std::string(256, 'x')).message_type(DhcpMessageType::ack).finish());
  EXPECT_FALSE(DhcpReplyBuilder(buf, h).hostname("").finish());
  const std::string_view bad[] = {"a..b"};
  EXPECT_FALSE(DhcpReplyBuilder(buf, h).domain_search(bad).finish());
  h.file = std::string_view(
      "0123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678901234567890");
  EXPECT_FALSE(DhcpReplyBuilder(buf, h).finish());
}

// ----------------------------------------------------------------- TFTP --

// What PXELINUX's loader asks for: RRQ pxelinux.0 octet, blksize 1468 and
// tsize 0 (RFC 2349: "tell me the size"), and the OACK a server answers.
const std::vector<u8> kRrq = hex("00 01 'pxelinux.0' 00 'octet' 00 'blksize' 00 '1468' 00 'tsize' 00 '0' 00");
const std::vector<u8> kOack = hex("00 06 'blksize' 00 '1468' 00 'tsize' 00 '26758' 00");

TEST(WireTftp, ParsesGoldenRrqWithOptions) {
  auto p = TftpPacket::parse(kRrq);
  ASSERT_TRUE(p) << to_string(p.error);
  EXPECT_EQ(p->opcode(), TftpOpcode::rrq);
  EXPECT_EQ(p->filename(), "pxelinux.0");
  EXPECT_EQ(p->mode(), TftpMode::octet);
  ASSERT_EQ(p->options().size(), 2u);
  EXPECT_EQ(p->options()[0].name, "blksize");
  EXPECT_EQ(p->options()[1].value, "0");
  EXPECT_EQ(p->blksize(), 1468);
  EXPECT_EQ(p->tsize(), 0u);
  EXPECT_FALSE(p->timeout());
  EXPECT_EQ(p->option("BLKSIZE"), "1468");
}

TEST(WireTftp, ParsesGoldenOackDataAckError) {
  auto o = TftpPacket::parse(kOack);
  ASSERT_TRUE(o) << to_string(o.error);
  EXPECT_EQ(o->opcode(), TftpOpcode::oack);
  EXPECT_EQ(o->blksize(), 1468);
  EXPECT_EQ(o->tsize(), 26758u);
  EXPECT_EQ(o->filename(), "");

  const auto d_bytes = hex("00 03 01 00 de ad be ef");
  auto d = TftpPacket::parse(d_bytes);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->block(), 256);
  EXPECT_EQ(std::vector<u8>(d->data().begin(), d->data().end()), hex("de ad be ef"));
  EXPECT_TRUE(d->options().empty());

  const auto empty_bytes = hex("00 03 ff ff");
  auto empty = TftpPacket::parse(empty_bytes);  // the last block of a multiple of blksize
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->block(), 0xffff);
  EXPECT_TRUE(empty->data().empty());

  const auto a_bytes = hex("00 04 00 07");
  auto a = TftpPacket::parse(a_bytes);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->opcode(), TftpOpcode::ack);
  EXPECT_EQ(a->block(), 7);

  const auto e_bytes = hex("00 05 00 01 'File not found' 00");
  auto e = TftpPacket::parse(e_bytes);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->error_code(), 1);
  EXPECT_EQ(e->error_message(), "File not found");
}

TEST(WireTftp, EveryTruncationIsRefused) {
  for (std::size_t n = 0; n < kRrq.size(); ++n) {
    auto p = TftpPacket::parse(std::span(kRrq).first(n));
    // Cuts right after the mode or a complete name/value pair leave a shorter, valid request.
    if (n == 2 + 11 + 6 || n == 2 + 11 + 6 + 8 + 5) {
      EXPECT_TRUE(p) << n;
      continue;
    }
    EXPECT_FALSE(p) << n;
    EXPECT_EQ(p.error, n < 2 ? TftpError::too_short : TftpError::unterminated)
        << n << " " << to_string(p.error);
  }
  for (std::size_t n = 0; n < kOack.size(); ++n) {
    auto p = TftpPacket::parse(std::span(kOack).first(n));
    if (n == 2 || n == 2 + 8 + 5) {
      EXPECT_TRUE(p) << n;
      continue;
    }
    EXPECT_EQ(p.error, n < 2 ? TftpError::too_short : TftpError::unterminated) << n;
  }
  EXPECT_EQ(TftpPacket::parse(hex("00 03 00")).error, TftpError::too_short);
  EXPECT_EQ(TftpPacket::parse(hex("00 04 00")).error, TftpError::too_short);
  EXPECT_EQ(TftpPacket::parse(hex("00 05 00 01")).error, TftpError::unterminated);
  EXPECT_EQ(TftpPacket::parse(hex("00 05 00 01 'oops'")).error, TftpError::unterminated);
}

TEST(WireTftp, BadRequestsAreRefusedWithAReason) {
  EXPECT_EQ(TftpPacket::parse(hex("00 00 00 00")).error, TftpError::bad_opcode);
  EXPECT_EQ(TftpPacket::parse(hex("00 07 00 00")).error, TftpError::bad_opcode);
  EXPECT_EQ(TftpPacket::parse(hex("00 01 00 'octet' 00")).error, TftpError::empty_name);
  EXPECT_EQ(TftpPacket::parse(hex("00 01 'f' 00 'binary' 00")).error, TftpError::bad_mode);
  EXPECT_EQ(TftpPacket::parse(hex("00 01 'f' 00 'octet' 00 00 '1' 00")).error, TftpError::empty_name);
  const auto modes_bytes = hex("00 02 'f' 00 'NetASCII' 00");
  auto modes = TftpPacket::parse(modes_bytes);
  ASSERT_TRUE(modes);
  EXPECT_EQ(modes->opcode(), TftpOpcode::wrq);
  EXPECT_EQ(modes->mode(), TftpMode::netascii);
  std::vector<u8> many = hex("00 01 'f' 00 'octet' 00");
  for (int i = 0; i < 17; ++i) {
    const auto pair = hex("'x' 00 '1' 00");
    many.insert(many.end(), pair.begin(), pair.end());
  }
  EXPECT_EQ(TftpPacket::parse(many).error, TftpError::too_many_options);
}

// libslirp's bad-input list: an RRQ with a 600-byte name. Refused, whether
// or not the name is terminated; 512 bytes is still accepted.
TEST(WireTftp, SixHundredByteNameIsRefused) {
  for (std::size_t len : {600u, 513u}) {
    std::vector<u8> rrq = hex("00 01");
    rrq.insert(rrq.end(), len, 'a');
    const std::size_t unterminated = rrq.size();
    const auto tail = hex("00 'octet' 00");
    rrq.insert(rrq.end(), tail.begin(), tail.end());
    EXPECT_EQ(TftpPacket::parse(rrq).error, TftpError::name_too_long) << len;
    EXPECT_EQ(TftpPacket::parse(std::span(rrq).first(unterminated)).error, TftpError::name_too_long) << len;
  }
  std::vector<u8> ok = hex("00 01");
  ok.insert(ok.end(), kTftpMaxFilename, 'b');
  const auto tail = hex("00 'octet' 00");
  ok.insert(ok.end(), tail.begin(), tail.end());
  auto p = TftpPacket::parse(ok);
  ASSERT_TRUE(p) << to_string(p.error);
  EXPECT_EQ(p->filename().size(), kTftpMaxFilename);
}

TEST(WireTftp, OptionValuesOutsideTheRfcRangesAreNotOffered) {
  const auto p_bytes =
      hex("00 01 'f' 00 'octet' 00 'blksize' 00 '7' 00 'timeout' 00 '0' 00 'tsize' 00 'x1' 00");
  auto p = TftpPacket::parse(p_bytes);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->blksize());
  EXPECT_FALSE(p->timeout());
  EXPECT_FALSE(p->tsize());
  const auto q_bytes =
      hex("00 01 'f' 00 'octet' 00 'blksize' 00 '65465' 00 'timeout' 00 '255' 00 'tsize' 00 "
          "'18446744073709551616' 00");
  auto q = TftpPacket::parse(q_bytes);
  ASSERT_TRUE(q);
  EXPECT_FALSE(q->blksize());
  EXPECT_EQ(q->timeout(), 255);
  EXPECT_FALSE(q->tsize());  // 2^64 does not fit
  const auto r_bytes =
      hex("00 01 'f' 00 'octet' 00 'blksize' 00 '65464' 00 'tsize' 00 '18446744073709551615' 00");
  auto r = TftpPacket::parse(r_bytes);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->blksize(), 65464);
  EXPECT_EQ(r->tsize(), ~u64{0});
}

TEST(WireTftp, BuildersMatchGoldenBytesAndRoundTrip) {
  std::array<u8, 1600> buf{};
  const TftpOption req_opts[] = {{"blksize", "1468"}, {"tsize", "0"}};
  auto n = build_tftp_request(buf, TftpOpcode::rrq, "pxelinux.0", TftpMode::octet, req_opts);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::vector<u8>(buf.begin(), buf.begin() + *n), kRrq);
  const TftpOption oack_opts[] = {{"blksize", "1468"}, {"tsize", "26758"}};
  n = build_tftp_oack(buf, oack_opts);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::vector<u8>(buf.begin(), buf.begin() + *n), kOack);
  n = build_tftp_ack(buf, 0x1234);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::vector<u8>(buf.begin(), buf.begin() + *n), hex("00 04 12 34"));
  n = build_tftp_error(buf, TftpErrorCode::file_not_found, "File not found");
  ASSERT_TRUE(n);
  EXPECT_EQ(std::vector<u8>(buf.begin(), buf.begin() + *n), hex("00 05 00 01 'File not found' 00"));

  std::vector<u8> payload(1468);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<u8>(i * 7);
  n = build_tftp_data(buf, 65535, payload);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1472u);
  auto d = TftpPacket::parse(std::span(buf).first(*n));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->block(), 65535);
  EXPECT_EQ(std::vector<u8>(d->data().begin(), d->data().end()), payload);

  // Too-small buffers and NULs inside strings fail cleanly.
  for (std::size_t len = 0; len < kRrq.size(); ++len) {
    EXPECT_FALSE(build_tftp_request(std::span(buf).first(len), TftpOpcode::rrq, "pxelinux.0", TftpMode::octet,
                                    req_opts))
        << len;
  }
  EXPECT_FALSE(build_tftp_data(std::span(buf).first(1471), 1, payload));
  EXPECT_FALSE(build_tftp_ack(std::span(buf).first(3), 1));
  EXPECT_FALSE(build_tftp_error(std::span(buf).first(18), TftpErrorCode::file_not_found, "File not found"));
  EXPECT_FALSE(build_tftp_error(buf, TftpErrorCode::not_defined, std::string_view("a\0b", 3)));
  EXPECT_FALSE(build_tftp_request(buf, TftpOpcode::data, "f", TftpMode::octet, {}));
}

}  // namespace
}  // namespace reel::wire
