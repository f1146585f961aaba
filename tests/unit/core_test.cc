// Clock, scheduler, guest memory and buses: the pieces of core/ that the
// determinism rules lean on.

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>

#include "core/device.h"
#include "core/guest_memory.h"
#include "core/mmio_bus.h"
#include "core/port_bus.h"
#include "core/scheduler.h"
#include "core/virtual_clock.h"

namespace reel {
namespace {

TEST(VirtualClock, InstructionsAndIdleTime) {
  VirtualClock clock(3);  // 8 ns per instruction
  clock.icount_ref() += 10;
  EXPECT_EQ(clock.now_ns(), 80u);
  EXPECT_EQ(clock.instructions_until(80), 0u);
  EXPECT_EQ(clock.instructions_until(81), 1u);
  EXPECT_EQ(clock.instructions_until(96), 2u);
  clock.advance_idle_to(1000);
  EXPECT_EQ(clock.now_ns(), 1000u);
  EXPECT_EQ(clock.icount(), 10u);
  clock.advance_idle_to(500);  // never backwards
  EXPECT_EQ(clock.now_ns(), 1000u);
  clock.icount_ref() += 1;
  EXPECT_EQ(clock.now_ns(), 1008u);
}

TEST(Scheduler, FiresInDeadlineThenSequenceOrder) {
  Scheduler s;
  std::vector<int> fired;
  const auto a = s.add_timer("a", [&] { fired.push_back(1); });
  const auto b = s.add_timer("b", [&] { fired.push_back(2); });
  const auto c = s.add_timer("c", [&] { fired.push_back(3); });
  s.arm(c, 100);
  s.arm(a, 100);  // same deadline, armed later: fires after c
  s.arm(b, 50);
  EXPECT_EQ(s.next_deadline(), 50u);
  s.run_due(99);
  EXPECT_EQ(fired, (std::vector<int>{2}));
  s.run_due(100);
  EXPECT_EQ(fired, (std::vector<int>{2, 3, 1}));
  EXPECT_FALSE(s.next_deadline().has_value());
}

TEST(Scheduler, CallbackRearmsAndStateRoundTrips) {
  Scheduler s;
  int count = 0;
  Scheduler::TimerId t = 0;
  t = s.add_timer("periodic", [&] {
    if (++count < 5) s.arm(t, s.deadline(t) + 10);
  });
  s.arm(t, 10);
  s.run_due(35);
  EXPECT_EQ(count, 3);
  EXPECT_EQ(s.deadline(t), 40u);

  std::stringstream ss;
  {
    BinaryOut ar(ss);
    ar(s);
  }
  Scheduler copy;
  copy.add_timer("periodic", [] {});
  {
    BinaryIn ar(ss);
    ar(copy);
  }
  EXPECT_TRUE(copy.armed(0));
  EXPECT_EQ(copy.deadline(0), 40u);
}

TEST(GuestMemory, DirtyPagesChangeTheHash) {
  GuestMemory mem(1 << 20);
  const u64 h0 = mem.hash();
  EXPECT_EQ(mem.hash(), h0);
  const u8 byte = 1;
  ASSERT_TRUE(mem.write(0x5000, std::span<const u8>(&byte, 1)));
  const u64 h1 = mem.hash();
  EXPECT_NE(h1, h0);
  const u8 zero = 0;
  ASSERT_TRUE(mem.write(0x5000, std::span<const u8>(&zero, 1)));
  EXPECT_EQ(mem.hash(), h0);
}

TEST(GuestMemory, HoleAndBoundsAreNotRam) {
  GuestMemory mem(2 << 20);
  EXPECT_TRUE(mem.is_ram(0, 0xA0000));
  EXPECT_FALSE(mem.is_ram(0x9FFFF, 2));
  EXPECT_FALSE(mem.is_ram(0xB0000, 1));
  EXPECT_TRUE(mem.is_ram(0xC0000, 0x1000));
  EXPECT_FALSE(mem.is_ram((2 << 20) - 1, 2));
  EXPECT_FALSE(mem.is_ram(0xFFFFFFFFull, 2));
  u8 buf[4];
  EXPECT_FALSE(mem.read((2 << 20) - 2, buf));
  EXPECT_TRUE(mem.page_flags()[0xA0] & GuestMemory::kMmio);
}

TEST(GuestMemory, CodeListenerHearsWritesToCodePages) {
  GuestMemory mem(1 << 20);
  std::vector<u32> invalidated;
  mem.set_code_listener([&](u32 page) { invalidated.push_back(page); });
  mem.mark_code_page(3);
  mem.note_write(0x3ffe, 4);  // touches pages 3 and 4
  EXPECT_EQ(invalidated, (std::vector<u32>{3}));
  mem.note_write(0x3000, 1);  // no longer a code page
  EXPECT_EQ(invalidated.size(), 1u);
}

class Recorder : public Device {
 public:
  Recorder() : Device("recorder.0") {}
  void reset() override {}
  u32 read(u32 offset, unsigned size) override { return offset * 0x10 + size; }
  void write(u32 offset, unsigned, u32 value) override { last = {offset, value}; }
  template <class A>
  void serialize(A&) {}
  REEL_DEVICE_STATE
  std::pair<u32, u32> last{};
};

TEST(PortBus, OffsetsAndOverlaps) {
  PortBus bus;
  Recorder dev, other;
  bus.map(0x40, 4, &dev);
  bus.map(0x61, 1, &dev, 0x21);
  EXPECT_EQ(bus.read(0x42, 1), 0x21u);
  EXPECT_EQ(bus.read(0x61, 1), 0x211u);
  bus.write(0x43, 1, 0x36);
  EXPECT_EQ(dev.last, (std::pair<u32, u32>{3, 0x36}));
  EXPECT_EQ(bus.read(0x300, 2), 0xffffu);
  EXPECT_EQ(bus.unmapped_accesses(), 1u);
  EXPECT_THROW(bus.map(0x43, 2, &other), std::invalid_argument);
  EXPECT_THROW(bus.map(0xffff, 2, &other), std::invalid_argument);
}

TEST(MmioBus, LookupAndOverlaps) {
  MmioBus bus;
  Recorder dev;
  bus.map(0xfee00000, 0x1000, &dev);
  EXPECT_EQ(bus.read(0xfee00010, 4), 0x104u);
  EXPECT_EQ(bus.read(0xfee01000, 4), 0xffffffffu);
  EXPECT_THROW(bus.map(0xfee00800, 0x1000, &dev), std::invalid_argument);
}

}  // namespace
}  // namespace reel
