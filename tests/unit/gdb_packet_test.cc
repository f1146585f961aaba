// The gdb remote protocol's framing and argument parsing (harness/gdb_packet.h),
// without a machine: checksums, acks, escapes, run-length encoding and
// malformed input.

#include "harness/gdb_packet.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace reel::gdb {
namespace {

std::vector<PacketEvent> feed(PacketReader& r, std::string_view bytes) {
  std::vector<PacketEvent> out;
  r.feed(bytes, out);
  return out;
}

TEST(GdbPacket, ChecksumIsTheByteSumModulo256) {
  EXPECT_EQ(checksum(""), 0);
  EXPECT_EQ(checksum("g"), 0x67);
  EXPECT_EQ(checksum("qSupported"), 0x37);
  EXPECT_EQ(frame_packet("OK"), "$OK#9a");
  EXPECT_EQ(frame_packet(""), "$#00");
}

TEST(GdbPacket, ReadsPacketsAcksAndInterrupts) {
  PacketReader r;
  const auto ev = feed(r, "+$g#67-\x03$m100,4#5e");
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].kind, PacketEvent::Kind::ack);
  EXPECT_EQ(ev[1].kind, PacketEvent::Kind::packet);
  EXPECT_EQ(ev[1].payload, "g");
  EXPECT_EQ(ev[2].kind, PacketEvent::Kind::nack);
  EXPECT_EQ(ev[3].kind, PacketEvent::Kind::interrupt);
  EXPECT_EQ(ev[4].kind, PacketEvent::Kind::packet);
  EXPECT_EQ(ev[4].payload, "m100,4");
}

TEST(GdbPacket, PacketsSplitAcrossReadsAreReassembled) {
  PacketReader r;
  const std::string framed = frame_packet("qSupported:multiprocess+;swbreak+");
  std::vector<PacketEvent> all;
  for (const char c : framed) {
    auto ev = feed(r, std::string_view(&c, 1));
    all.insert(all.end(), ev.begin(), ev.end());
  }
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].payload, "qSupported:multiprocess+;swbreak+");
}

TEST(GdbPacket, BadChecksumIsReportedAndTheNextPacketStillParses) {
  PacketReader r;
  auto ev = feed(r, "$g#00$g#zz$g#67");
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].kind, PacketEvent::Kind::bad_checksum);
  EXPECT_EQ(ev[1].kind, PacketEvent::Kind::bad_checksum);
  EXPECT_EQ(ev[2].kind, PacketEvent::Kind::packet);
  EXPECT_EQ(ev[2].payload, "g");
}

TEST(GdbPacket, OverlongPacketIsDroppedWithoutGrowingTheBuffer) {
  PacketReader r;
  std::string big(kMaxPacket * 4 + 4, 'a');
  big[0] = '$';
  big.replace(big.size() - 3, 3, "#00");
  auto ev = feed(r, big);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, PacketEvent::Kind::overlong);
  ev = feed(r, "$?#3f");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].payload, "?");
}

TEST(GdbPacket, InterruptByteInsideAPacketIsData) {
  // An escaped '#' is 0x03 on the wire: it must not read as Ctrl-C.
  PacketReader r;
  const std::string framed = frame_packet(std::string("X0,1:#", 6));
  EXPECT_NE(framed.find('\x03'), std::string::npos);
  const auto ev = feed(r, framed);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, PacketEvent::Kind::packet);
  EXPECT_EQ(unescape_binary(ev[0].payload).value(), "X0,1:#");
}

TEST(GdbPacket, EscapesSpecialCharacters) {
  const std::string framed = frame_packet("a$b#c}d*e");
  EXPECT_EQ(framed.substr(0, 14),
            "$a}\x04"
            "b}\x03"
            "c}]d}\x0a"
            "e");
  PacketReader r;
  const auto ev = feed(r, framed);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(unescape_binary(ev[0].payload).value(), "a$b#c}d*e");
  EXPECT_FALSE(unescape_binary("abc}").has_value());
}

TEST(GdbPacket, RunLengthEncodingRoundTripsAndAvoidsHashAndDollar) {
  EXPECT_EQ(run_length_encode("0000000000"), "0*&");  // 9 repeats: 9 + 29 is '&'
  EXPECT_EQ(run_length_encode("0000000000"), "0*&");  // 9 repeats: 9 + 29 is '&'
                                                      // '%' = 9 + 29...
  for (size_t n = 1; n < 300; ++n) {
    std::string text(n + 2, '0');
    text.front() = 'x';
    text.back() = 'y';
    const std::string enc = run_length_encode(text);
    EXPECT_EQ(enc.find('#'), std::string::npos) << n;
    EXPECT_EQ(enc.find('$'), std::string::npos) << n;
    EXPECT_EQ(run_length_decode(enc).value(), text) << n;
  }
  const std::string framed = frame_packet(std::string(64, '0'), true);
  EXPECT_LT(framed.size(), 16u);
  PacketReader r;
  const auto ev = feed(r, framed);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(run_length_decode(ev[0].payload).value(), std::string(64, '0'));
  EXPECT_FALSE(run_length_decode("*a").has_value());
}

TEST(GdbPacket, HexHelpers) {
  EXPECT_EQ(hex_le32(0x12345678), "78563412");
  EXPECT_EQ(parse_hex_le32("78563412").value(), 0x12345678u);
  EXPECT_FALSE(parse_hex_le32("7856341").has_value());
  EXPECT_EQ(parse_hex("DeadBeef").value(), 0xdeadbeefu);
  EXPECT_FALSE(parse_hex("").has_value());
  EXPECT_FALSE(parse_hex("12345678123456781").has_value());
  EXPECT_FALSE(parse_hex("12g").has_value());
  EXPECT_EQ(to_hex(std::string_view("info")), "696e666f");
  EXPECT_FALSE(from_hex("abc").has_value());
}

TEST(GdbPacket, ParsesCommandArguments) {
  const auto al = parse_address_length("101f30,40");
  ASSERT_TRUE(al);
  EXPECT_EQ(al->first, 0x101f30u);
  EXPECT_EQ(al->second, 0x40u);
  EXPECT_FALSE(parse_address_length("101f30").has_value());

  const auto m = parse_memory_write_hex("1000,2:abcd");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->address, 0x1000u);
  EXPECT_EQ(m->bytes, (std::vector<u8>{0xab, 0xcd}));
  EXPECT_FALSE(parse_memory_write_hex("1000,3:abcd").has_value());

  const auto x = parse_memory_write_binary("2000,2:}\x03}\x5d");
  ASSERT_TRUE(x);
  EXPECT_EQ(x->bytes, (std::vector<u8>{'#', '}'}));
  EXPECT_TRUE(parse_memory_write_binary("2000,0:").has_value());

  const auto z = parse_breakpoint("2,148ec0,4");
  ASSERT_TRUE(z);
  EXPECT_EQ(z->type, 2u);
  EXPECT_EQ(z->address, 0x148ec0u);
  EXPECT_EQ(z->kind, 4u);
  EXPECT_FALSE(parse_breakpoint("5,0,1").has_value());
  EXPECT_FALSE(parse_breakpoint("0,,1").has_value());

  const auto v = parse_vcont(";s:1;c");
  ASSERT_TRUE(v);
  ASSERT_EQ(v->size(), 2u);
  EXPECT_EQ((*v)[0].action, 's');
  EXPECT_EQ((*v)[0].thread.value(), "1");
  EXPECT_EQ((*v)[1].action, 'c');
  EXPECT_FALSE((*v)[1].thread.has_value());
  EXPECT_EQ(parse_vcont(";C05")->front().action, 'c');
  EXPECT_FALSE(parse_vcont(";q").has_value());
  EXPECT_FALSE(parse_vcont("").has_value());
  EXPECT_FALSE(parse_vcont(";;").has_value());

  const auto q = parse_xfer_read("qXfer:features:read:target.xml:0,ffb");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->object, "features");
  EXPECT_EQ(q->annex, "target.xml");
  EXPECT_EQ(q->offset, 0u);
  EXPECT_EQ(q->length, 0xffbu);
  EXPECT_FALSE(parse_xfer_read("qXfer:features:write:target.xml:0,1").has_value());
  EXPECT_EQ(xfer_reply("abcdef", 0, 4), "mabcd");
  EXPECT_EQ(xfer_reply("abcdef", 4, 4), "lef");
  EXPECT_EQ(xfer_reply("abcdef", 9, 4), "l");
}

}  // namespace
}  // namespace reel::gdb
