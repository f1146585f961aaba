// The MC146818 RTC and CMOS memory: dates from a fixed epoch value, formats
// per register B, progression on virtual time only, and IRQ8 sources.

#include "devices/cmos_rtc.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "core/port_bus.h"
#include "core/scheduler.h"
#include "core/virtual_clock.h"
#include "tests/unit/fake_host_io.h"

namespace reel {
namespace {

using test::FakeHostIO;
using test::FakeIrqSink;

constexpr u64 kSecond = 1'000'000'000;
// 2000-01-01 13:05:58 UTC, a Saturday.
constexpr i64 kY2kAfternoon = (946684800LL + 13 * 3600 + 5 * 60 + 58) * 1'000'000'000LL;

class CmosTest : public ::testing::Test {
 protected:
  void make(std::optional<i64> base, u32 ram = 128u << 20) {
    rtc.emplace(sched, clock, host, IrqLine{&irqs, 8}, ram, base);
    rtc->map_into(ports);
  }
  u8 reg(u8 index) {
    ports.write(0x70, 1, index);
    return static_cast<u8>(ports.read(0x71, 1));
  }
  void set(u8 index, u8 value) {
    ports.write(0x70, 1, index);
    ports.write(0x71, 1, value);
  }
  void run_until(u64 ns) {
    while (sched.next_deadline() && *sched.next_deadline() <= ns) {
      clock.advance_idle_to(*sched.next_deadline());
      sched.run_due(clock.now_ns());
    }
    clock.advance_idle_to(ns);
  }
  Scheduler sched;
  VirtualClock clock;
  FakeHostIO host;
  FakeIrqSink irqs;
  PortBus ports;
  std::optional<CmosRtc> rtc;
};

TEST_F(CmosTest, HostDateReadOnceInBcd) {
  make(std::nullopt);  // FakeHostIO: 2026-11-25 04:43:12 UTC, a Wednesday
  EXPECT_EQ(host.time_reads, 1);
  EXPECT_EQ(reg(0x00), 0x12);
  EXPECT_EQ(reg(0x02), 0x43);
  EXPECT_EQ(reg(0x04), 0x04);
  EXPECT_EQ(reg(0x06), 0x04);  // Sunday = 1
  EXPECT_EQ(reg(0x07), 0x25);
  EXPECT_EQ(reg(0x08), 0x11);
  EXPECT_EQ(reg(0x09), 0x26);
  EXPECT_EQ(reg(0x32), 0x20);  // century, BCD
  EXPECT_EQ(reg(0x0a), 0x26);
  EXPECT_EQ(reg(0x0b), 0x02);  // 24-hour BCD
  EXPECT_EQ(reg(0x0d), 0x80);  // valid RAM and time
  // A reset (reboot) keeps the running clock and does not ask the host again.
  clock.advance_idle_to(5 * kSecond);
  rtc->reset();
  EXPECT_EQ(host.time_reads, 1);
  EXPECT_EQ(reg(0x00), 0x17);
}

TEST_F(CmosTest, FixedBaseBinaryAnd12HourModes) {
  make(kY2kAfternoon);
  EXPECT_EQ(host.time_reads, 0);  // -rtc base= never asks the host
  EXPECT_EQ(reg(0x04), 0x13);
  EXPECT_EQ(reg(0x06), 0x07);  // Saturday
  EXPECT_EQ(reg(0x09), 0x00);
  EXPECT_EQ(reg(0x32), 0x20);
  set(0x0b, 0x00);             // 12-hour BCD
  EXPECT_EQ(reg(0x04), 0x81);  // 1 PM
  set(0x0b, 0x04);             // 12-hour binary
  EXPECT_EQ(reg(0x04), 0x81);
  EXPECT_EQ(reg(0x02), 5);
  EXPECT_EQ(reg(0x00), 58);
  set(0x0b, 0x06);  // 24-hour binary
  EXPECT_EQ(reg(0x04), 13);
  EXPECT_EQ(reg(0x32), 20);
}

TEST_F(CmosTest, TimeAdvancesOnVirtualTimeAcrossMidnight) {
  // 1999-12-31 23:59:58 UTC.
  make((946684800LL - 2) * 1'000'000'000LL);
  EXPECT_EQ(reg(0x00), 0x58);
  clock.advance_idle_to(kSecond - 1);
  EXPECT_EQ(reg(0x00), 0x58);
  clock.advance_idle_to(kSecond);
  EXPECT_EQ(reg(0x00), 0x59);
  clock.advance_idle_to(2 * kSecond);
  EXPECT_EQ(reg(0x00), 0x00);
  EXPECT_EQ(reg(0x04), 0x00);
  EXPECT_EQ(reg(0x07), 0x01);
  EXPECT_EQ(reg(0x08), 0x01);
  EXPECT_EQ(reg(0x09), 0x00);
  EXPECT_EQ(reg(0x32), 0x20);
}

TEST_F(CmosTest, UpdateInProgressWindowBeforeEachSecond) {
  make(i64{0});
  clock.advance_idle_to(kSecond - 244'001);
  EXPECT_EQ(reg(0x0a) & 0x80, 0x00);
  clock.advance_idle_to(kSecond - 244'000);
  EXPECT_EQ(reg(0x0a) & 0x80, 0x80);
  clock.advance_idle_to(kSecond);
  EXPECT_EQ(reg(0x0a) & 0x80, 0x00);
}

TEST_F(CmosTest, SetBitFreezesAndWritesTheClock) {
  make(kY2kAfternoon);
  set(0x0b, 0x82);  // SET, 24 h, BCD
  set(0x04, 0x08);
  set(0x02, 0x30);
  set(0x00, 0x00);
  set(0x07, 0x29);
  set(0x08, 0x02);
  set(0x09, 0x24);
  clock.advance_idle_to(10 * kSecond);
  EXPECT_EQ(reg(0x00), 0x00);  // frozen while SET
  set(0x0b, 0x02);
  clock.advance_idle_to(13 * kSecond);
  EXPECT_EQ(reg(0x00), 0x03);
  EXPECT_EQ(reg(0x02), 0x30);
  EXPECT_EQ(reg(0x04), 0x08);
  EXPECT_EQ(reg(0x07), 0x29);
  EXPECT_EQ(reg(0x06), 0x05);  // 2024-02-29 was a Thursday
}

TEST_F(CmosTest, PeriodicInterruptRate) {
  make(i64{0});
  set(0x0a, 0x26);  // 1024 Hz
  set(0x0b, 0x42);  // PIE
  int fired = 0;
  while (sched.next_deadline() && *sched.next_deadline() <= kSecond) {
    clock.advance_idle_to(*sched.next_deadline());
    sched.run_due(clock.now_ns());
    if (irqs.levels[8]) {
      ++fired;
      EXPECT_EQ(reg(0x0c), 0xc0);  // IRQF | PF, then cleared
      EXPECT_FALSE(irqs.levels[8]);
    }
  }
  // Exactly 1024 periods of 32 time-base ticks in one second, no drift.
  EXPECT_EQ(fired, 1024);
  set(0x0a, 0x2f);  // 2 Hz
  std::vector<u64> at;
  while (*sched.next_deadline() <= 3 * kSecond) {
    clock.advance_idle_to(*sched.next_deadline());
    sched.run_due(clock.now_ns());
    if (reg(0x0c) & 0x40) at.push_back(clock.now_ns());
  }
  EXPECT_EQ(at, (std::vector<u64>{1'500'000'000, 2'000'000'000, 2'500'000'000, 3'000'000'000}));
}

TEST_F(CmosTest, RegisterCHoldsIrqUntilRead) {
  make(i64{0});
  set(0x0b, 0x12);  // UIE
  run_until(kSecond);
  EXPECT_TRUE(irqs.levels[8]);
  run_until(3 * kSecond);
  EXPECT_EQ(irqs.edges[8], 1);  // the line stays high until C is read
  EXPECT_EQ(reg(0x0c), 0x90);   // IRQF | UF
  EXPECT_FALSE(irqs.levels[8]);
  EXPECT_EQ(reg(0x0c), 0x00);
  run_until(4 * kSecond);
  EXPECT_EQ(irqs.edges[8], 2);
}

TEST_F(CmosTest, AlarmInterrupt) {
  make(i64{0});     // 1970-01-01 00:00:00
  set(0x0b, 0x22);  // AIE
  set(0x01, 0x05);  // alarm at 00:00:05
  set(0x03, 0x00);
  set(0x05, 0x00);
  run_until(4 * kSecond);
  EXPECT_FALSE(irqs.levels[8]);
  run_until(5 * kSecond);
  EXPECT_TRUE(irqs.levels[8]);
  EXPECT_EQ(reg(0x0c) & 0xa0, 0xa0);
  // "Don't care" seconds (0xC0-0xFF) fire every second.
  set(0x01, 0xc0);
  run_until(6 * kSecond);
  EXPECT_TRUE(irqs.levels[8]);
}

TEST_F(CmosTest, MemorySizesForQemuLikeMachines) {
  make(i64{0}, 128u << 20);
  EXPECT_EQ(reg(0x15) | reg(0x16) << 8, 640);
  EXPECT_EQ(reg(0x17) | reg(0x18) << 8, 0xffff);  // KiB above 1 MiB, saturated
  EXPECT_EQ(reg(0x30) | reg(0x31) << 8, 0xffff);
  EXPECT_EQ(reg(0x34) | reg(0x35) << 8, 112 * 16);  // 64 KiB units above 16 MiB
  EXPECT_EQ(reg(0x5b) | reg(0x5c) << 8 | reg(0x5d) << 16, 0);
  EXPECT_EQ(reg(0x14), 0x04);
  EXPECT_EQ(reg(0x0f), 0x00);  // shutdown status: normal
}

TEST_F(CmosTest, MemorySizesForSmallMachines) {
  make(i64{0}, 32u << 20);
  EXPECT_EQ(reg(0x17) | reg(0x18) << 8, 31 * 1024);
  EXPECT_EQ(reg(0x30) | reg(0x31) << 8, 31 * 1024);
  EXPECT_EQ(reg(0x34) | reg(0x35) << 8, 16 * 16);
}

TEST_F(CmosTest, NmiMaskBitAndPlainMemory) {
  make(i64{0});
  ports.write(0x70, 1, 0x80 | 0x40);  // NMI masked, index 0x40
  ports.write(0x71, 1, 0x5a);
  EXPECT_EQ(reg(0x40), 0x5a);
  set(0x0f, 0x0a);  // shutdown status byte is plain memory
  EXPECT_EQ(reg(0x0f), 0x0a);
  set(0x0c, 0xff);  // C and D are read-only
  set(0x0d, 0x00);
  EXPECT_EQ(reg(0x0d), 0x80);
  EXPECT_EQ(ports.read(0x70, 1), 0xffu);
}

TEST(CmosCalendar, CivilConversionsRoundTrip) {
  for (i64 s : {i64{0}, i64{951868800}, i64{1795581792}, i64{4102444800}, i64{-86400}, i64{1709164800}}) {
    EXPECT_EQ(CmosRtc::seconds_from_civil(CmosRtc::civil_from_seconds(s)), s);
  }
  const auto leap = CmosRtc::civil_from_seconds(1709164800);  // 2024-02-29 00:00:00
  EXPECT_EQ(leap.year, 2024);
  EXPECT_EQ(leap.month, 2);
  EXPECT_EQ(leap.day, 29);
  const auto epoch = CmosRtc::civil_from_seconds(0);
  EXPECT_EQ(epoch.weekday, 5);                          // Thursday
  const auto before = CmosRtc::civil_from_seconds(-1);  // 1969-12-31 23:59:59
  EXPECT_EQ(before.year, 1969);
  EXPECT_EQ(before.hour, 23);
  EXPECT_EQ(before.second, 59);
}

}  // namespace
}  // namespace reel
