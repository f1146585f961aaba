#include "harness/options.h"

#include <gtest/gtest.h>

namespace reel {
namespace {

MachineOptions parse(std::vector<std::string> args) { return parse_machine_options(args); }

std::string error_of(std::vector<std::string> args) {
  try {
    parse_machine_options(args);
  } catch (const OptionError& e) {
    return e.what();
  }
  return "";
}

TEST(Options, QemuSpellings) {
  const MachineOptions o = parse({"-kernel", "g.elf", "-append", "a b", "-m", "256", "-serial", "file:out.txt",
                                  "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-icount",
                                  "shift=3,sleep=off", "-no-reboot", "-M", "isapc", "-d", "in_asm", "-D", "log"});
  EXPECT_EQ(o.kernel, "g.elf");
  EXPECT_EQ(o.append, "a b");
  EXPECT_EQ(o.ram_bytes, 256u << 20);
  ASSERT_EQ(o.serials.size(), 1u);
  EXPECT_EQ(o.serials[0].kind, SerialOption::Kind::file);
  EXPECT_EQ(o.serials[0].path, "out.txt");
  ASSERT_TRUE(o.debug_exit.has_value());
  EXPECT_EQ(o.debug_exit->iobase, 0xf4);
  EXPECT_EQ(o.debug_exit->iosize, 4);
  EXPECT_EQ(o.icount_shift, 3u);
  EXPECT_FALSE(o.icount_sleep);
  EXPECT_TRUE(o.no_reboot);
  EXPECT_EQ(o.machine, "isapc");
  EXPECT_TRUE(o.log_in_asm);
  EXPECT_EQ(o.log_file, "log");
}

TEST(Options, Defaults) {
  const MachineOptions o = parse({"-kernel", "g.elf"});
  EXPECT_EQ(o.ram_bytes, 128u << 20);
  ASSERT_EQ(o.serials.size(), 1u);
  EXPECT_EQ(o.serials[0].kind, SerialOption::Kind::stdio);
  EXPECT_FALSE(o.debug_exit.has_value());
  EXPECT_EQ(o.machine, "pc");
}

TEST(Options, SubOptionCommaEscape) {
  const SubOptions s = parse_suboptions("file:a,,b,x=1");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].second, "file:a,b");
  EXPECT_EQ(s[1].first, "x");
  EXPECT_EQ(s[1].second, "1");
}

TEST(Options, SizesAndDates) {
  EXPECT_EQ(parse_size("64k", "-m"), 64u << 10);
  EXPECT_EQ(parse_size("1G", "-m"), 1u << 30);
  EXPECT_EQ(parse_utc_date("1970-01-01T00:00:00", "-rtc"), 0);
  EXPECT_EQ(parse_utc_date("2000-03-01", "-rtc"), 951868800LL * 1000000000LL);
  EXPECT_EQ(parse_utc_date("2026-11-25T04:43:12", "-rtc"), 1795581792LL * 1000000000LL);
}

TEST(Options, ErrorsNameTheOption) {
  EXPECT_EQ(error_of({"-kernel"}), "-kernel: missing argument");
  EXPECT_NE(error_of({"-kernel", "g", "-m", "lots"}).find("-m: "), std::string::npos);
  EXPECT_NE(error_of({"-kernel", "g", "-bogus"}).find("-bogus: unknown option"), std::string::npos);
  EXPECT_NE(error_of({"-kernel", "g", "-device", "e1000"}).find("unknown device 'e1000'"), std::string::npos);
  EXPECT_NE(error_of({"-kernel", "g", "-serial", "tcp:1"}).find("-serial: expected"), std::string::npos);
  EXPECT_NE(error_of({"-kernel", "g", "-icount", "shift=auto"}).find("not deterministic"), std::string::npos);
  EXPECT_NE(error_of({"-kernel", "g", "-rtc", "base=yesterday"}).find("-rtc base"), std::string::npos);
  EXPECT_NE(error_of({}).find("-kernel"), std::string::npos);
  EXPECT_NE(error_of({"-kernel", "g", "-device", "isa-debug-exit,iosize=3"}).find("iosize"), std::string::npos);
}

}  // namespace
}  // namespace reel

namespace reel {
namespace {

// Found by option_parser_fuzz: a far-future date overflowed the ns count.
TEST(Options, RtcBaseYearOutOfRange) {
  EXPECT_NE(error_of({"-kernel", "g", "-rtc", "base=6264-01-02T03:04:05"}).find("-rtc base"), std::string::npos);
}

}  // namespace
}  // namespace reel
