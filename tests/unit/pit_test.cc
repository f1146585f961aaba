// The 8254 and port 0x61 against virtual time: periods, OUT levels and
// IRQ0 edges land on exact 1.193182 MHz tick boundaries.

#include "devices/pit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "core/port_bus.h"
#include "core/scheduler.h"
#include "core/virtual_clock.h"
#include "tests/unit/fake_host_io.h"

namespace reel {
namespace {

class RecordingIrq : public IrqSink {
 public:
  explicit RecordingIrq(const VirtualClock& clock) : m_clock(clock) {}
  void set_irq(unsigned line, bool level) override {
    if (line == 0 && level) edges_ns.push_back(m_clock.now_ns());
  }
  std::vector<u64> edges_ns;

 private:
  const VirtualClock& m_clock;
};

class PitTest : public ::testing::Test {
 protected:
  PitTest() { pit.map_into(ports); }
  // Lets virtual time pass to `ns`, firing timers at their deadlines.
  void run_until(u64 ns) {
    while (sched.next_deadline() && *sched.next_deadline() <= ns) {
      clock.advance_idle_to(*sched.next_deadline());
      sched.run_due(clock.now_ns());
    }
    clock.advance_idle_to(ns);
    sched.run_due(clock.now_ns());
  }
  u16 latch_read(u16 port, u8 select) {
    ports.write(0x43, 1, select);
    const u32 lo = ports.read(port, 1);
    const u32 hi = ports.read(port, 1);
    return static_cast<u16>(lo | hi << 8);
  }
  u8 status(unsigned channel) {
    ports.write(0x43, 1, 0xe0 | (2 << channel));  // read-back: status only
    return static_cast<u8>(ports.read(0x40 + channel, 1));
  }
  Scheduler sched;
  VirtualClock clock;
  RecordingIrq irqs{clock};
  Pit pit{sched, clock, IrqLine{&irqs, 0}};
  PortBus ports;
};

TEST(PitMath, TicksFromVirtualNanoseconds) {
  EXPECT_EQ(Pit::ns_to_ticks(1'000'000'000), 1'193'182u);
  EXPECT_EQ(Pit::ns_to_ticks(838), 0u);  // one tick is 838.095 ns
  EXPECT_EQ(Pit::ns_to_ticks(839), 1u);
  EXPECT_EQ(Pit::ticks_to_ns_ceil(1), 839u);
  EXPECT_EQ(Pit::ticks_to_ns_ceil(1'193'182), 1'000'000'000u);
  // No overflow for long runs (a year of virtual time).
  const u64 year = 365ull * 86400 * 1'000'000'000;
  EXPECT_EQ(Pit::ns_to_ticks(year), 365ull * 86400 * 1'193'182);
  for (u64 t : {u64{1}, u64{11932}, u64{65536}, u64{123456789}}) {
    EXPECT_EQ(Pit::ns_to_ticks(Pit::ticks_to_ns_ceil(t)), t);
    EXPECT_EQ(Pit::ns_to_ticks(Pit::ticks_to_ns_ceil(t) - 1), t - 1);
  }
}

TEST_F(PitTest, Mode2Irq0EdgesAtExactTickTimes) {
  ports.write(0x43, 1, 0x34);  // channel 0, lo/hi, mode 2 (Linux's periodic tick)
  ports.write(0x40, 1, 0x9c);  // 11932: 100 Hz
  ports.write(0x40, 1, 0x2e);
  // 11932 ticks is slightly more than 10 ms: the 100th edge comes just
  // after one second.
  run_until(1'000'000'000);
  EXPECT_EQ(irqs.edges_ns.size(), 99u);
  run_until(Pit::ticks_to_ns_ceil(100 * 11932));
  ASSERT_EQ(irqs.edges_ns.size(), 100u);
  for (u64 k = 1; k <= 100; ++k) EXPECT_EQ(irqs.edges_ns[k - 1], Pit::ticks_to_ns_ceil(k * 11932));
  // The count runs down from N to 1 in each period.
  run_until(Pit::ticks_to_ns_ceil(100 * 11932 + 100));
  EXPECT_EQ(latch_read(0x40, 0x00), 11932 - 100);
  EXPECT_EQ(status(0) & 0x80, 0x80);  // OUT high except for the last tick
}

TEST_F(PitTest, Mode3SquareWaveCountsByTwo) {
  ports.write(0x43, 1, 0x36);  // channel 0, lo/hi, mode 3
  ports.write(0x40, 1, 0x00);  // 65536
  ports.write(0x40, 1, 0x00);
  EXPECT_EQ(*sched.next_deadline(), Pit::ticks_to_ns_ceil(65536));
  run_until(Pit::ticks_to_ns_ceil(1000));
  EXPECT_EQ(latch_read(0x40, 0x00), static_cast<u16>(65536 - 2000));
  EXPECT_EQ(status(0) & 0x80, 0x80);  // first half: high
  run_until(Pit::ticks_to_ns_ceil(32768 + 10));
  EXPECT_EQ(status(0) & 0x80, 0x00);  // second half: low
  run_until(Pit::ticks_to_ns_ceil(3 * 65536));
  EXPECT_EQ(irqs.edges_ns.size(), 3u);
  EXPECT_EQ(irqs.edges_ns[2], Pit::ticks_to_ns_ceil(3 * 65536));
}

TEST_F(PitTest, Mode0OneShotOnChannel0) {
  ports.write(0x43, 1, 0x30);  // mode 0, lo/hi
  ports.write(0x40, 1, 0xe8);
  ports.write(0x40, 1, 0x03);  // 1000 ticks
  EXPECT_EQ(status(0) & 0x80, 0x00);
  run_until(10'000'000);
  ASSERT_EQ(irqs.edges_ns.size(), 1u);
  EXPECT_EQ(irqs.edges_ns[0], Pit::ticks_to_ns_ceil(1000));
  EXPECT_EQ(status(0) & 0x80, 0x80);
  EXPECT_FALSE(sched.next_deadline().has_value());  // nothing polls afterwards
}

TEST_F(PitTest, Mode0FirstByteStopsTheCount) {
  ports.write(0x43, 1, 0x30);
  ports.write(0x40, 1, 0x10);
  ports.write(0x40, 1, 0x00);
  ports.write(0x40, 1, 0x20);  // first byte of a new count: counting stops
  run_until(1'000'000);
  EXPECT_TRUE(irqs.edges_ns.empty());
  ports.write(0x40, 1, 0x00);  // second byte: starts again from 0x20
  const u64 start = clock.now_ns();
  run_until(start + 1'000'000);
  ASSERT_EQ(irqs.edges_ns.size(), 1u);
  EXPECT_EQ(irqs.edges_ns[0], start + Pit::ticks_to_ns_ceil(0x20));
}

TEST_F(PitTest, LinuxCalibrationThroughPortB) {
  // pit_calibrate_tsc(): gate high, speaker off, channel 2 mode 0, then
  // poll port 0x61 bit 5 until the count expires.
  EXPECT_EQ(ports.read(0x61, 1) & 0x01, 0x00u);  // gate low at reset
  ports.write(0x61, 1, (ports.read(0x61, 1) & ~0x02u) | 0x01);
  ports.write(0x43, 1, 0xb0);
  const u32 latch = 1193182 / 20;  // 50 ms
  ports.write(0x42, 1, latch & 0xff);
  ports.write(0x42, 1, latch >> 8);
  const u64 start = clock.now_ns();
  EXPECT_EQ(ports.read(0x61, 1) & 0x20, 0x00u);
  clock.advance_idle_to(start + Pit::ticks_to_ns_ceil(latch) - 1);
  EXPECT_EQ(ports.read(0x61, 1) & 0x20, 0x00u);
  clock.advance_idle_to(start + Pit::ticks_to_ns_ceil(latch));
  EXPECT_EQ(ports.read(0x61, 1) & 0x21, 0x21u);
  EXPECT_TRUE(irqs.edges_ns.empty());  // channel 2 never touches IRQ0
}

TEST_F(PitTest, QuickCalibrationReadsMsbAsTimePasses) {
  // quick_pit_calibrate(): mode 0, count 0xffff, reads LSB then MSB.
  ports.write(0x61, 1, 0x01);
  ports.write(0x43, 1, 0xb0);
  ports.write(0x42, 1, 0xff);
  ports.write(0x42, 1, 0xff);
  for (u32 msb = 0xff; msb > 0xf0; --msb) {
    ports.read(0x42, 1);
    EXPECT_EQ(ports.read(0x42, 1), msb);
    clock.advance_idle_to(clock.now_ns() + Pit::ticks_to_ns_ceil(256));
  }
}

// Linux 6.1 (arch/x86/kernel/tsc.c, drivers/clocksource/i8253.c) replayed
// with a guest that spends `io_ns` of virtual time on every port access and
// TSC read, the way reel's clock advances by one instruction per IN/OUT and
// RDTSC (a 1 GHz counter of virtual time).
class LinuxPitTest : public PitTest {
 protected:
  static constexpr u64 kPitTickRate = 1193182;
  u64 io_ns = 1;

  u8 inb(u16 port) {
    const u8 v = static_cast<u8>(ports.read(port, 1));
    clock.advance_idle_to(clock.now_ns() + io_ns);
    return v;
  }
  void outb(u8 v, u16 port) {
    ports.write(port, 1, v);
    clock.advance_idle_to(clock.now_ns() + io_ns);
  }
  u64 get_cycles() {
    const u64 t = clock.now_ns();
    clock.advance_idle_to(t + io_ns);
    return t;
  }

  bool pit_verify_msb(u8 val) {
    inb(0x42);  // LSB, ignored
    return inb(0x42) == val;
  }
  bool pit_expect_msb(u8 val, u64& tscp, u64& deltap) {
    int count = 0;
    u64 tsc = 0, prev_tsc = 0;
    for (; count < 50000; ++count) {
      if (!pit_verify_msb(val)) break;
      prev_tsc = tsc;
      tsc = get_cycles();
    }
    deltap = get_cycles() - prev_tsc;
    tscp = tsc;
    return count > 5;
  }

  // quick_pit_calibrate(): TSC kHz, or 0 when Linux gives up on it.
  u64 quick_pit_calibrate() {
    constexpr u64 kMaxIterations = 50 * kPitTickRate / 1000 / 256;
    outb(static_cast<u8>((inb(0x61) & ~0x02) | 0x01), 0x61);
    outb(0xb0, 0x43);
    outb(0xff, 0x42);
    outb(0xff, 0x42);
    pit_verify_msb(0);
    u64 tsc = 0, d1 = 0, d2 = 0, delta = 0;
    if (!pit_expect_msb(0xff, tsc, d1)) return 0;
    for (u64 i = 1; i <= kMaxIterations; ++i) {
      if (!pit_expect_msb(static_cast<u8>(0xff - i), delta, d2)) return 0;
      delta -= tsc;
      if (i == 1 && d1 + d2 >= (delta * kMaxIterations) >> 11) return 0;
      if (d1 + d2 >= delta >> 11) continue;
      if (!pit_verify_msb(static_cast<u8>(0xfe - i))) return 0;
      quick_iterations = i;
      return delta * kPitTickRate / (i * 256 * 1000);
    }
    return 0;
  }

  // pit_calibrate_tsc(): TSC kHz, or ~0 for an SMI-disturbed run.
  u64 pit_calibrate_tsc(u32 latch, u64 ms, int loopmin) {
    outb(static_cast<u8>((inb(0x61) & ~0x02) | 0x01), 0x61);
    outb(0xb0, 0x43);
    outb(latch & 0xff, 0x42);
    outb(static_cast<u8>(latch >> 8), 0x42);
    u64 tsc = get_cycles(), t1 = tsc, t2 = tsc;
    int pitcnt = 0;
    u64 tscmin = ~u64{0}, tscmax = 0;
    while ((inb(0x61) & 0x20) == 0) {
      t2 = get_cycles();
      const u64 delta = t2 - tsc;
      tsc = t2;
      tscmin = std::min(tscmin, delta);
      tscmax = std::max(tscmax, delta);
      ++pitcnt;
    }
    loops = pitcnt;
    if (pitcnt < loopmin || tscmax > 10 * tscmin) return ~u64{0};
    return (t2 - t1) / ms;
  }

  u64 quick_iterations = 0;
  int loops = 0;
};

TEST_F(LinuxPitTest, QuickPitCalibrateSucceedsAtEveryGuestSpeed) {
  // A few instructions per access is reel at -icount shift=0 (a loop of
  // pit_expect_msb is about a dozen); 1 us is ISA speed.
  for (u64 ns : {u64{4}, u64{64}, u64{1000}}) {
    SCOPED_TRACE("io_ns " + std::to_string(ns));
    io_ns = ns;
    const u64 khz = quick_pit_calibrate();
    ASSERT_NE(khz, 0u) << "Fast TSC calibration failed";
    // Within the 500 ppm Linux aims for, of the 1 GHz virtual TSC.
    EXPECT_NEAR(static_cast<double>(khz), 1'000'000.0, 500.0);
    EXPECT_GE(quick_iterations, 1u);
  }
}

TEST_F(LinuxPitTest, QuickPitCalibrateSeesEveryMsbInTurn) {
  // What pit_expect_msb relies on: unlatched LSB, MSB reads of channel 2
  // run 0xff, 0xfe, ... with each MSB lasting 256 ticks of virtual time.
  io_ns = 16;
  outb(0x01, 0x61);
  outb(0xb0, 0x43);
  outb(0xff, 0x42);
  outb(0xff, 0x42);
  const u64 start = clock.now_ns() - io_ns;  // the count started with the MSB write
  u8 expect = 0xff;
  u64 changes = 0;
  while (clock.now_ns() < start + Pit::ticks_to_ns_ceil(0xf080)) {
    inb(0x42);
    const u64 at = clock.now_ns();
    const u8 msb = inb(0x42);
    if (msb != expect) {
      ASSERT_EQ(msb, static_cast<u8>(expect - 1)) << "no MSB value is skipped";
      // The LSB was read at `at - io_ns`, the MSB at `at`.
      EXPECT_GE(Pit::ns_to_ticks(at - start), (0xffu - msb) * 256u - 1);
      expect = msb;
      ++changes;
    }
  }
  EXPECT_EQ(changes, 0xf0u);
}

TEST_F(LinuxPitTest, PitCalibrateTscBothLatches) {
  io_ns = 4;
  // CAL_LATCH: 10 ms, at least 1000 loops.
  const u64 khz10 = pit_calibrate_tsc(kPitTickRate / 100, 10, 1000);
  ASSERT_NE(khz10, ~u64{0}) << "loops " << loops;
  EXPECT_NEAR(static_cast<double>(khz10), 1'000'000.0, 500.0);
  // CAL2_LATCH: 50 ms, at least 5000 loops; the gate is already high.
  const u64 khz50 = pit_calibrate_tsc(kPitTickRate / 20, 50, 5000);
  ASSERT_NE(khz50, ~u64{0}) << "loops " << loops;
  EXPECT_NEAR(static_cast<double>(khz50), 1'000'000.0, 500.0);
  EXPECT_EQ(inb(0x61) & 0x23, 0x21) << "gate high, speaker off, OUT2 high";
  EXPECT_TRUE(irqs.edges_ns.empty());
}

TEST_F(LinuxPitTest, PeriodicTickAtEveryHz) {
  for (u32 hz : {100u, 250u, 300u, 1000u}) {
    SCOPED_TRACE("HZ " + std::to_string(hz));
    const u32 latch = static_cast<u32>((kPitTickRate + hz / 2) / hz);  // PIT_LATCH
    irqs.edges_ns.clear();
    // pit_set_periodic(): binary, mode 2, LSB/MSB, channel 0.
    outb(0x34, 0x43);
    outb(latch & 0xff, 0x40);
    outb(static_cast<u8>(latch >> 8), 0x40);
    const u64 start = clock.now_ns() - io_ns;
    run_until(start + 1'000'000'000);
    // One edge per period, none lost and none early, for a whole second.
    ASSERT_EQ(irqs.edges_ns.size(), kPitTickRate / latch);
    for (size_t k = 0; k < irqs.edges_ns.size(); ++k)
      ASSERT_EQ(irqs.edges_ns[k], start + Pit::ticks_to_ns_ceil((k + 1) * latch)) << "edge " << k;
    // i8253_read (the 32-bit clocksource): latch, LSB, MSB; the count is
    // never above PIT_LATCH (Linux would reprogram the PIT, thinking it a
    // VIA686a) and runs down within a period.
    for (int i = 0; i < 64; ++i) {
      run_until(clock.now_ns() + Pit::ticks_to_ns_ceil(latch / 70));
      const u64 ticks = Pit::ns_to_ticks(clock.now_ns() - start);
      outb(0x00, 0x43);
      u32 count = inb(0x40);
      count |= u32{inb(0x40)} << 8;
      ASSERT_GE(count, 1u);
      ASSERT_LE(count, latch);
      EXPECT_EQ(count, latch - ticks % latch);
    }
  }
}

TEST_F(LinuxPitTest, OneshotClockeventAndShutdown) {
  // pit_set_oneshot(): mode 4 (software-triggered strobe) on channel 0,
  // then each pit_next_event() writes a count, LSB then MSB.
  outb(0x38, 0x43);
  run_until(clock.now_ns() + 100'000'000);
  EXPECT_TRUE(irqs.edges_ns.empty()) << "no count yet, no interrupt";
  for (u32 delta : {0xfu, 1000u, 0x7fffu}) {  // min_delta, something, max_delta
    irqs.edges_ns.clear();
    outb(delta & 0xff, 0x40);
    outb(static_cast<u8>(delta >> 8), 0x40);
    const u64 written = clock.now_ns() - io_ns;
    run_until(written + 100'000'000);
    ASSERT_EQ(irqs.edges_ns.size(), 1u) << "delta " << delta;
    // OUT pulses low at the end of the count; the PIC sees it rise again.
    EXPECT_EQ(irqs.edges_ns[0], written + Pit::ticks_to_ns_ceil(delta + 1));
  }
  // A new event programmed before the last one expired replaces it.
  irqs.edges_ns.clear();
  outb(0xff, 0x40);
  outb(0x7f, 0x40);
  run_until(clock.now_ns() + 1'000'000);
  outb(0x00, 0x40);
  outb(0x10, 0x40);
  const u64 reprogrammed = clock.now_ns() - io_ns;
  run_until(reprogrammed + 100'000'000);
  ASSERT_EQ(irqs.edges_ns.size(), 1u);
  EXPECT_EQ(irqs.edges_ns[0], reprogrammed + Pit::ticks_to_ns_ceil(0x1001));
  // clockevent_i8253_disable(): mode 0, a zero count, mode 0 again. The
  // final control word stops the count before it can raise IRQ0.
  outb(0x38, 0x43);
  outb(0x00, 0x40);
  outb(0x10, 0x40);
  irqs.edges_ns.clear();
  outb(0x30, 0x43);
  outb(0x00, 0x40);
  outb(0x00, 0x40);
  outb(0x30, 0x43);
  run_until(clock.now_ns() + 2'000'000'000);
  EXPECT_TRUE(irqs.edges_ns.empty());
  EXPECT_FALSE(sched.next_deadline().has_value()) << "a stopped PIT costs no timer events";
  EXPECT_EQ(status(0) & 0xc0, 0x40) << "OUT low, null count";
}

TEST_F(PitTest, GateLowPausesChannel2) {
  ports.write(0x61, 1, 0x01);
  ports.write(0x43, 1, 0xb0);
  ports.write(0x42, 1, 0x00);
  ports.write(0x42, 1, 0x10);  // 0x1000
  clock.advance_idle_to(Pit::ticks_to_ns_ceil(0x100));
  ports.write(0x61, 1, 0x00);  // gate low
  clock.advance_idle_to(Pit::ticks_to_ns_ceil(0x800));
  EXPECT_EQ(latch_read(0x42, 0x80), 0x0f00);
  ports.write(0x61, 1, 0x01);
  clock.advance_idle_to(clock.now_ns() + Pit::ticks_to_ns_ceil(0x100));
  EXPECT_EQ(latch_read(0x42, 0x80), 0x0e00);
}

TEST_F(PitTest, CounterLatchFreezesValue) {
  ports.write(0x43, 1, 0x34);
  ports.write(0x40, 1, 0x00);
  ports.write(0x40, 1, 0x10);
  clock.advance_idle_to(Pit::ticks_to_ns_ceil(0x10));
  ports.write(0x43, 1, 0x00);  // latch channel 0
  clock.advance_idle_to(Pit::ticks_to_ns_ceil(0x500));
  ports.write(0x43, 1, 0x00);  // a second latch before reading is ignored
  EXPECT_EQ(ports.read(0x40, 1), 0xf0u);
  EXPECT_EQ(ports.read(0x40, 1), 0x0fu);
  // Without a latch the live count is read.
  EXPECT_EQ(ports.read(0x40, 1), 0x00u);
  EXPECT_EQ(ports.read(0x40, 1), 0x0bu);
}

TEST_F(PitTest, ReadBackLatchesStatusThenCount) {
  ports.write(0x43, 1, 0x74);         // channel 1, lo/hi, mode 2
  EXPECT_EQ(status(1) & 0x40, 0x40);  // null count until loaded
  ports.write(0x41, 1, 0x12);
  ports.write(0x41, 1, 0x00);
  ports.write(0x43, 1, 0xc4);  // read-back count and status of channel 1
  EXPECT_EQ(ports.read(0x41, 1), 0x80u | 0x30u | 0x04u);
  EXPECT_EQ(ports.read(0x41, 1), 0x12u);
  EXPECT_EQ(ports.read(0x41, 1), 0x00u);
}

TEST_F(PitTest, LsbOnlyMsbOnlyAndBcd) {
  ports.write(0x43, 1, 0x50);  // channel 1, LSB only, mode 0
  ports.write(0x41, 1, 0x40);
  clock.advance_idle_to(Pit::ticks_to_ns_ceil(0x10));
  EXPECT_EQ(ports.read(0x41, 1), 0x30u);
  EXPECT_EQ(ports.read(0x41, 1), 0x30u);
  ports.write(0x43, 1, 0x60);  // MSB only
  ports.write(0x41, 1, 0x02);  // count 0x200
  const u64 t0 = clock.now_ns();
  clock.advance_idle_to(t0 + Pit::ticks_to_ns_ceil(0x100));
  EXPECT_EQ(ports.read(0x41, 1), 0x01u);
  ports.write(0x43, 1, 0x71);  // lo/hi, mode 0, BCD
  ports.write(0x41, 1, 0x00);
  ports.write(0x41, 1, 0x10);  // 1000 decimal
  const u64 t1 = clock.now_ns();
  clock.advance_idle_to(t1 + Pit::ticks_to_ns_ceil(1));
  EXPECT_EQ(latch_read(0x41, 0x40), 0x0999);
  clock.advance_idle_to(t1 + Pit::ticks_to_ns_ceil(1001));
  EXPECT_EQ(latch_read(0x41, 0x40), 0x9999);  // BCD wraps through 9999
}

TEST_F(PitTest, Mode4StrobeAndMode1GateTrigger) {
  ports.write(0x43, 1, 0x38);  // channel 0 mode 4
  ports.write(0x40, 1, 100);
  ports.write(0x40, 1, 0);
  run_until(1'000'000);
  ASSERT_EQ(irqs.edges_ns.size(), 1u);
  EXPECT_EQ(irqs.edges_ns[0], Pit::ticks_to_ns_ceil(101));  // OUT rises after the strobe
  // Channel 2 mode 1 waits for a gate edge.
  ports.write(0x43, 1, 0xb2);
  ports.write(0x42, 1, 50);
  ports.write(0x42, 1, 0);
  clock.advance_idle_to(clock.now_ns() + 1'000'000);
  EXPECT_EQ(status(2) & 0x80, 0x80);  // OUT high until triggered
  ports.write(0x61, 1, 0x01);
  const u64 t = clock.now_ns();
  EXPECT_EQ(status(2) & 0x80, 0x00);
  clock.advance_idle_to(t + Pit::ticks_to_ns_ceil(50));
  EXPECT_EQ(status(2) & 0x80, 0x80);
}

TEST_F(PitTest, PortBBitsAndRefreshToggle) {
  ports.write(0x61, 1, 0x0f);
  EXPECT_EQ(ports.read(0x61, 1) & 0x0f, 0x0fu);
  const u32 a = ports.read(0x61, 1) & 0x10;
  clock.advance_idle_to(clock.now_ns() + 15085);
  const u32 b = ports.read(0x61, 1) & 0x10;
  EXPECT_NE(a, b);  // the refresh bit follows virtual time
}

TEST_F(PitTest, StateRoundTripKeepsCounting) {
  ports.write(0x43, 1, 0x34);
  ports.write(0x40, 1, 0x00);
  ports.write(0x40, 1, 0x10);
  clock.advance_idle_to(Pit::ticks_to_ns_ceil(0x123));
  std::stringstream ss;
  {
    BinaryOut out(ss);
    pit.save_state(out);
  }
  test::FakeIrqSink other_irqs;
  Scheduler other_sched;
  Pit other(other_sched, clock, IrqLine{&other_irqs, 0});
  {
    BinaryIn in(ss);
    other.load_state(in);
  }
  EXPECT_EQ(other.count(0), pit.count(0));
  EXPECT_EQ(other.count(0), 0x1000 - 0x123);
}

}  // namespace
}  // namespace reel
