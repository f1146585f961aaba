// The MC146818 RTC and CMOS memory: dates from a fixed epoch value, formats
// per register B, progression on virtual time only, and IRQ8 sources.

#include "devices/cmos_rtc.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
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

// Linux 6.1's MC146818 code (drivers/rtc/rtc-mc146818-lib.c, rtc-cmos.c,
// arch/x86/kernel/rtc.c) replayed with a guest that spends `io_ns` of
// virtual time on every port access.
class LinuxCmosTest : public CmosTest {
 protected:
  struct Time {
    int sec, min, hour, mday, mon, year;  // as struct rtc_time: mon 0-11, year - 1900
    bool operator==(const Time&) const = default;
  };

  u8 cmos_read(u8 addr) {
    ports.write(0x70, 1, addr);
    clock.advance_idle_to(clock.now_ns() + io_ns);
    const u8 v = static_cast<u8>(ports.read(0x71, 1));
    clock.advance_idle_to(clock.now_ns() + io_ns);
    return v;
  }
  void cmos_write(u8 v, u8 addr) {
    ports.write(0x70, 1, addr);
    clock.advance_idle_to(clock.now_ns() + io_ns);
    ports.write(0x71, 1, v);
    clock.advance_idle_to(clock.now_ns() + io_ns);
  }
  void udelay(u64 us) { clock.advance_idle_to(clock.now_ns() + us * 1000); }
  static int bcd2bin(u8 v) { return (v >> 4) * 10 + (v & 0x0f); }
  static u8 bin2bcd(int v) { return static_cast<u8>((v / 10) << 4 | (v % 10)); }

  // mc146818_avoid_UIP() around mc146818_get_time()'s callback; without
  // ACPI's FADT century the century register is not read.
  std::optional<Time> mc146818_get_time(int timeout_ms = 1000) {
    for (int i = 0; i / 10 < timeout_ms; ++i) {
      const u8 seconds = cmos_read(0x00);
      if (cmos_read(0x0a) & 0x80) {
        udelay(100);
        ++uip_waits;
        continue;
      }
      if (seconds != cmos_read(0x00)) continue;
      Time t{seconds, cmos_read(0x02), cmos_read(0x04), cmos_read(0x07), cmos_read(0x08), cmos_read(0x09)};
      const u8 ctrl = cmos_read(0x0b);
      if (cmos_read(0x0a) & 0x80) {
        udelay(100);
        ++uip_waits;
        continue;
      }
      if (seconds != cmos_read(0x00)) continue;
      if (!(ctrl & 0x04)) {
        t = {bcd2bin(static_cast<u8>(t.sec)),  bcd2bin(static_cast<u8>(t.min)),
             bcd2bin(static_cast<u8>(t.hour)), bcd2bin(static_cast<u8>(t.mday)),
             bcd2bin(static_cast<u8>(t.mon)),  bcd2bin(static_cast<u8>(t.year))};
      }
      if (t.year <= 69) t.year += 100;
      t.mon--;
      return t;
    }
    return std::nullopt;
  }

  // mc146818_set_time() on an Intel CPU: SET and the divider reset while the
  // registers are written, then both released.
  void mc146818_set_time(const Time& t) {
    const u8 control = cmos_read(0x0b);
    const bool bcd = !(control & 0x04);
    auto enc = [bcd](int v) { return bcd ? bin2bcd(v) : static_cast<u8>(v); };
    const u8 save_control = cmos_read(0x0b);
    cmos_write(save_control | 0x80, 0x0b);
    const u8 save_freq_select = cmos_read(0x0a);
    cmos_write(save_freq_select | 0x70, 0x0a);  // RTC_DIV_RESET2
    cmos_write(enc(t.year % 100), 0x09);
    cmos_write(enc(t.mon + 1), 0x08);
    cmos_write(enc(t.mday), 0x07);
    cmos_write(enc(t.hour), 0x04);
    cmos_write(enc(t.min), 0x02);
    cmos_write(enc(t.sec), 0x00);
    cmos_write(save_control, 0x0b);
    cmos_write(save_freq_select, 0x0a);
  }

  // cmos_irq_disable() / cmos_irq_enable(): B changed, C read to flush.
  void cmos_irq_disable(u8 mask) {
    const u8 control = static_cast<u8>(cmos_read(0x0b) & ~mask);
    cmos_write(control, 0x0b);
    cmos_read(0x0c);
  }
  void cmos_irq_enable(u8 mask) {
    u8 control = cmos_read(0x0b);
    cmos_read(0x0c);
    control |= mask;
    cmos_write(control, 0x0b);
    cmos_read(0x0c);
  }

  u64 io_ns = 1000;
  int uip_waits = 0;
};

TEST_F(LinuxCmosTest, GetTimeAsLinuxBootsIt) {
  make(kY2kAfternoon);
  const auto t = mc146818_get_time();
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, (Time{58, 5, 13, 1, 0, 100}));  // 2000-01-01 13:05:58
  EXPECT_EQ(uip_waits, 0);
}

TEST_F(LinuxCmosTest, GetTimeWaitsOutTheUpdateAndReadsTheNewSecond) {
  make(kY2kAfternoon);
  for (u64 before_update : {u64{244'000}, u64{100'000}, u64{10'000}, u64{300'000}}) {
    SCOPED_TRACE("ns before the update " + std::to_string(before_update));
    clock.advance_idle_to(((clock.now_ns() / kSecond) + 2) * kSecond - before_update);
    const i64 old_second = rtc->current_seconds();
    uip_waits = 0;
    const auto t = mc146818_get_time();
    ASSERT_TRUE(t);
    // Inside the UIP window Linux polls (100 us at a time) and reads the
    // second after the update; well before it, the current one.
    const bool in_window = before_update <= 244'000;
    EXPECT_EQ(t->sec, CmosRtc::civil_from_seconds(old_second + (in_window ? 1 : 0)).second);
    EXPECT_EQ(uip_waits > 0, in_window);
    EXPECT_LE(uip_waits, 3);
  }
}

TEST_F(LinuxCmosTest, IndexWritesWithTheNmiBitStillSelectTheRegister) {
  make(kY2kAfternoon);
  for (u8 nmi : {u8{0x00}, u8{0x80}}) {
    ports.write(0x70, 1, nmi | 0x00);
    EXPECT_EQ(ports.read(0x71, 1), 0x58u);
    ports.write(0x70, 1, nmi | 0x32);
    EXPECT_EQ(ports.read(0x71, 1), 0x20u);
    ports.write(0x70, 1, nmi | 0x0b);
    EXPECT_EQ(ports.read(0x71, 1), 0x02u);
  }
}

TEST_F(LinuxCmosTest, RtcCmosProbe) {
  make(kY2kAfternoon);
  // mc146818_does_rtc_work(): UIP clears in time.
  EXPECT_TRUE(mc146818_get_time(1000));
  // Force the 1024 Hz default rate, interrupts off, 24-hour mode required.
  cmos_write(0x20 | 0x06, 0x0a);
  cmos_irq_disable(0x40 | 0x20 | 0x10);
  const u8 control = cmos_read(0x0b);
  EXPECT_EQ(control & 0x02, 0x02) << "rtc_cmos: only 24-hr supported";
  EXPECT_EQ(control & 0x70, 0x00);
  EXPECT_EQ(cmos_read(0x0d) & 0x80, 0x80) << "RTC_VALID: battery good";
  run_until(clock.now_ns() + 3 * kSecond);
  EXPECT_EQ(irqs.edges[8], 0);
}

TEST_F(LinuxCmosTest, SetTimeFirstUpdateComesHalfASecondAfterTheWrite) {
  // rtc-cmos sets set_offset_nsec to NSEC_PER_SEC / 2: Linux writes second
  // S at system time S + 0.5 because the MC146818's first update after the
  // divider leaves reset comes 500 ms later. The phase the clock had before
  // must not survive the write.
  make(kY2kAfternoon);
  for (u64 phase_ms : {u64{0}, u64{100}, u64{499}, u64{700}, u64{999}}) {
    SCOPED_TRACE("write at phase " + std::to_string(phase_ms) + " ms");
    clock.advance_idle_to(((clock.now_ns() / kSecond) + 3) * kSecond + phase_ms * 1'000'000);
    const Time want{30, 45, 10, 24, 4, 124};  // 2024-05-24 10:45:30
    mc146818_set_time(want);
    const u64 released = clock.now_ns() - io_ns;  // the write of register A
    clock.advance_idle_to(released + kSecond / 2 - 244'001);
    EXPECT_EQ(reg(0x00), 0x30);
    EXPECT_EQ(reg(0x0a) & 0x80, 0x00);
    clock.advance_idle_to(released + kSecond / 2 - 244'000);
    EXPECT_EQ(reg(0x0a) & 0x80, 0x80) << "UIP 244 us before the first update";
    EXPECT_EQ(reg(0x00), 0x30);
    clock.advance_idle_to(released + kSecond / 2 - 1);
    EXPECT_EQ(reg(0x00), 0x30);
    clock.advance_idle_to(released + kSecond / 2);
    EXPECT_EQ(reg(0x00), 0x31);
    clock.advance_idle_to(released + kSecond / 2 + kSecond);
    EXPECT_EQ(reg(0x00), 0x32);
    io_ns = 1000;
    const auto t = mc146818_get_time();
    ASSERT_TRUE(t);
    EXPECT_EQ(*t, (Time{32, 45, 10, 24, 4, 124}));
  }
}

TEST_F(LinuxCmosTest, DividerResetStopsTheClock) {
  make(kY2kAfternoon);
  cmos_write(0x70 | 0x06, 0x0a);  // divider chain held in reset, SET clear
  const u64 held = clock.now_ns();
  clock.advance_idle_to(held + 5 * kSecond + 300'000'000);
  EXPECT_EQ(reg(0x00), 0x58) << "no updates while the divider is in reset";
  EXPECT_EQ(reg(0x0a) & 0x80, 0x00);
  cmos_write(0x26, 0x0a);
  const u64 released = clock.now_ns() - io_ns;
  clock.advance_idle_to(released + kSecond / 2 - 1);
  EXPECT_EQ(reg(0x00), 0x58);
  clock.advance_idle_to(released + kSecond / 2);
  EXPECT_EQ(reg(0x00), 0x59);
  clock.advance_idle_to(released + kSecond / 2 + kSecond);
  EXPECT_EQ(reg(0x00), 0x00);
  EXPECT_EQ(reg(0x02), 0x06);
}

TEST_F(LinuxCmosTest, SetOnlyKeepsTheDividerPhase) {
  // SET alone (no divider reset) inhibits updates but the divider keeps
  // running: the next update stays on the old second boundary.
  make(kY2kAfternoon);
  clock.advance_idle_to(300'000'000);
  set(0x0b, 0x82);
  set(0x00, 0x10);
  set(0x0b, 0x02);
  clock.advance_idle_to(kSecond - 1);
  EXPECT_EQ(reg(0x00), 0x10);
  clock.advance_idle_to(kSecond);
  EXPECT_EQ(reg(0x00), 0x11);
}

TEST_F(LinuxCmosTest, UpdateInterruptsFollowTheNewPhase) {
  make(kY2kAfternoon);
  clock.advance_idle_to(2 * kSecond + 200'000'000);
  mc146818_set_time(Time{0, 0, 12, 1, 0, 100});
  const u64 released = clock.now_ns() - io_ns;
  cmos_irq_enable(0x10);  // UIE, as the rtc core's update-interrupt mode does
  std::vector<u64> at;
  while (at.size() < 3) {
    ASSERT_TRUE(sched.next_deadline());
    clock.advance_idle_to(*sched.next_deadline());
    sched.run_due(clock.now_ns());
    if (irqs.levels[8]) {
      at.push_back(clock.now_ns());
      // cmos_interrupt(): C (clears IRQ8), then B.
      EXPECT_EQ(reg(0x0c), 0x90);
      EXPECT_EQ(reg(0x0b) & 0x10, 0x10);
    }
  }
  EXPECT_EQ(
      at, (std::vector<u64>{released + kSecond / 2, released + 3 * kSecond / 2, released + 5 * kSecond / 2}));
}

TEST_F(LinuxCmosTest, AlarmAsCmosSetAlarmProgramsIt) {
  make(kY2kAfternoon);  // 13:05:58
  // cmos_set_alarm(): AIE off, hours/minutes/seconds alarm (BCD), AIE on.
  cmos_irq_disable(0x20);
  cmos_write(0x13, 0x05);
  cmos_write(0x06, 0x03);
  cmos_write(0x03, 0x01);
  cmos_irq_enable(0x20);
  run_until(4 * kSecond);
  EXPECT_FALSE(irqs.levels[8]);
  run_until(5 * kSecond);
  ASSERT_TRUE(irqs.levels[8]) << "13:06:03";
  // cmos_interrupt(): C, B; an alarm turns AIE off and reads C again.
  const u8 irqstat = cmos_read(0x0c);
  const u8 control = cmos_read(0x0b);
  EXPECT_EQ(irqstat & ((control & 0x70) | 0x80), 0xa0);
  cmos_write(control & ~0x20, 0x0b);
  cmos_read(0x0c);
  EXPECT_FALSE(irqs.levels[8]);
  run_until(100 * kSecond);
  EXPECT_EQ(irqs.edges[8], 1);
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
