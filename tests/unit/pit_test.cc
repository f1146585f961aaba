// The 8254 and port 0x61 against virtual time: periods, OUT levels and
// IRQ0 edges land on exact 1.193182 MHz tick boundaries.

#include "devices/pit.h"

#include <gtest/gtest.h>

#include <sstream>
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
