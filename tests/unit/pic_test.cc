// The 8259A pair through its ports, as Linux, SeaBIOS and our guests drive it.

#include "devices/pic.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <sstream>
#include <utility>

#include "core/port_bus.h"
#include "tests/unit/fake_host_io.h"

namespace reel {
namespace {

using test::FakeIntrListener;

class PicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pic.map_into(ports);
    init(0x20, 0x28, 0x01);
  }
  // ICW1-ICW4 on both chips: cascade on IR2, 8086 mode, `icw4` as given.
  void init(u8 master_base, u8 slave_base, u8 icw4) {
    for (auto [port, value] : std::initializer_list<std::pair<u16, u8>>{{0x20, 0x11},
                                                                        {0x21, master_base},
                                                                        {0x21, 0x04},
                                                                        {0x21, icw4},
                                                                        {0xa0, 0x11},
                                                                        {0xa1, slave_base},
                                                                        {0xa1, 0x02},
                                                                        {0xa1, icw4}}) {
      ports.write(port, 1, value);
    }
  }
  u8 irr(u16 base) {
    ports.write(base, 1, 0x0a);
    return static_cast<u8>(ports.read(base, 1));
  }
  u8 isr(u16 base) {
    ports.write(base, 1, 0x0b);
    return static_cast<u8>(ports.read(base, 1));
  }
  FakeIntrListener cpu;
  Pic pic{cpu};
  PortBus ports;
};

TEST_F(PicTest, InitSequenceUnmasksAndSetsVectors) {
  EXPECT_EQ(ports.read(0x21, 1), 0x00u);  // ICW1 clears the mask
  EXPECT_EQ(ports.read(0xa1, 1), 0x00u);
  ports.write(0x21, 1, 0xfb);  // OCW1
  ports.write(0xa1, 1, 0xff);
  EXPECT_EQ(ports.read(0x21, 1), 0xfbu);
  EXPECT_EQ(ports.read(0xa1, 1), 0xffu);
  ports.write(0x21, 1, 0x00);
  ports.write(0xa1, 1, 0x00);
  pic.set_irq(0, true);
  EXPECT_EQ(pic.acknowledge(), 0x20);
  ports.write(0x20, 1, 0x20);
  pic.set_irq(15, true);
  EXPECT_EQ(pic.acknowledge(), 0x2f);
  // Re-initialising with other vectors (SeaBIOS uses 0x08/0x70) takes effect.
  init(0x08, 0x70, 0x01);
  pic.set_irq(15, false);
  pic.set_irq(14, true);
  EXPECT_EQ(pic.acknowledge(), 0x76);
}

TEST_F(PicTest, PriorityOrderAndNesting) {
  pic.set_irq(5, true);
  pic.set_irq(3, true);
  pic.set_irq(7, true);
  EXPECT_EQ(pic.acknowledge(), 0x23);
  EXPECT_EQ(isr(0x20), 0x08);
  EXPECT_FALSE(pic.intr_pending());  // lower priorities wait for EOI
  pic.set_irq(1, true);              // a higher one nests
  EXPECT_TRUE(pic.intr_pending());
  EXPECT_EQ(pic.acknowledge(), 0x21);
  EXPECT_EQ(isr(0x20), 0x0a);
  ports.write(0x20, 1, 0x20);  // non-specific EOI ends the highest (IR1)
  EXPECT_EQ(isr(0x20), 0x08);
  ports.write(0x20, 1, 0x20);
  EXPECT_EQ(pic.acknowledge(), 0x25);
  ports.write(0x20, 1, 0x20);
  EXPECT_EQ(pic.acknowledge(), 0x27);
  ports.write(0x20, 1, 0x20);
  EXPECT_EQ(isr(0x20), 0x00);
  EXPECT_FALSE(pic.intr_pending());
}

TEST_F(PicTest, SpecificEoiAndRotation) {
  pic.set_irq(3, true);
  EXPECT_EQ(pic.acknowledge(), 0x23);
  ports.write(0x20, 1, 0x63);  // specific EOI for IR3
  EXPECT_EQ(isr(0x20), 0x00);
  // Set priority: IR4 becomes the lowest, so IR5 is now the highest.
  ports.write(0x20, 1, 0xc4);
  pic.set_irq(1, true);
  pic.set_irq(6, true);
  EXPECT_EQ(pic.acknowledge(), 0x26);
  // Rotate on non-specific EOI: IR6 becomes lowest, IR7 highest.
  ports.write(0x20, 1, 0xa0);
  EXPECT_EQ(pic.acknowledge(), 0x21);
  ports.write(0x20, 1, 0x20);
}

TEST_F(PicTest, EdgeLatchesAndNeedsNewEdge) {
  pic.set_irq(4, true);
  EXPECT_EQ(irr(0x20), 0x10);
  EXPECT_EQ(pic.acknowledge(), 0x24);
  EXPECT_EQ(irr(0x20), 0x00);
  ports.write(0x20, 1, 0x20);
  EXPECT_FALSE(pic.intr_pending());  // still high, but no new edge
  pic.set_irq(4, false);
  pic.set_irq(4, true);
  EXPECT_TRUE(pic.intr_pending());
  // A pulse shorter than the INTA still latches (the PIT's IRQ0).
  pic.set_irq(0, true);
  pic.set_irq(0, false);
  EXPECT_EQ(pic.acknowledge(), 0x20);
}

TEST_F(PicTest, LevelTriggeredViaElcr) {
  ports.write(0x4d1, 1, 0x0c);  // IRQ10, IRQ11 level (what SeaBIOS sets)
  EXPECT_EQ(ports.read(0x4d1, 1), 0x0cu);
  EXPECT_EQ(pic.elcr(), 0x0c00);
  pic.set_irq(11, true);
  EXPECT_EQ(pic.acknowledge(), 0x2b);
  ports.write(0xa0, 1, 0x20);
  ports.write(0x20, 1, 0x20);
  // Still asserted after EOI: requests again without a new edge.
  EXPECT_TRUE(pic.intr_pending());
  EXPECT_EQ(pic.acknowledge(), 0x2b);
  ports.write(0xa0, 1, 0x20);
  ports.write(0x20, 1, 0x20);
  // The driver quiets the device; the slave's request goes away at once,
  // but the master latched the cascade edge: that INTA finds nothing on
  // the slave and yields the spurious IRQ15 vector, as on real PCs.
  pic.set_irq(11, false);
  EXPECT_EQ(pic.acknowledge(), 0x2f);
  EXPECT_EQ(pic.spurious(), 1u);
  EXPECT_EQ(isr(0xa0), 0x00);
  ports.write(0x20, 1, 0x20);  // Linux EOIs only the master for IRQ15
  EXPECT_FALSE(pic.intr_pending());
  // IRQ0-2, 8 and 13 are hard-wired edge.
  pic.set_elcr(0xffff);
  EXPECT_EQ(pic.elcr(), 0xdef8);
}

TEST_F(PicTest, SlaveCascadeThroughIr2) {
  pic.set_irq(12, true);
  EXPECT_TRUE(pic.intr_pending());
  EXPECT_EQ(pic.acknowledge(), 0x2c);
  EXPECT_EQ(isr(0x20), 0x04);  // cascade in service on the master
  EXPECT_EQ(isr(0xa0), 0x10);
  // While IR2 is in service, a lower master line waits...
  pic.set_irq(5, true);
  EXPECT_FALSE(pic.intr_pending());
  // ...a higher one does not.
  pic.set_irq(1, true);
  EXPECT_EQ(pic.acknowledge(), 0x21);
  ports.write(0x20, 1, 0x20);
  ports.write(0xa0, 1, 0x20);
  ports.write(0x20, 1, 0x20);
  EXPECT_EQ(pic.acknowledge(), 0x25);
}

TEST_F(PicTest, MaskedLinesDoNotInterrupt) {
  ports.write(0x21, 1, 0x10);
  pic.set_irq(4, true);
  EXPECT_FALSE(pic.intr_pending());
  EXPECT_EQ(irr(0x20), 0x10);  // but the request is latched
  ports.write(0x21, 1, 0x00);
  EXPECT_TRUE(pic.intr_pending());
  // Masking the cascade masks the whole slave.
  EXPECT_EQ(pic.acknowledge(), 0x24);
  ports.write(0x20, 1, 0x20);
  ports.write(0x21, 1, 0x04);
  pic.set_irq(9, true);
  EXPECT_FALSE(pic.intr_pending());
  ports.write(0x21, 1, 0x00);
  EXPECT_EQ(pic.acknowledge(), 0x29);
}

TEST_F(PicTest, SpuriousIrq7AndIrq15) {
  ports.write(0x4d0, 1, 0x20);  // IRQ5 level
  pic.set_irq(5, true);
  EXPECT_TRUE(pic.intr_pending());
  pic.set_irq(5, false);  // withdrawn before INTA
  EXPECT_EQ(pic.acknowledge(), 0x27);
  EXPECT_EQ(isr(0x20), 0x00);  // a spurious IR7 sets no ISR bit
  EXPECT_EQ(pic.spurious(), 1u);

  // On the slave: the master acknowledges the cascade, the slave answers IR7.
  ports.write(0x4d1, 1, 0x02);  // IRQ9 level
  pic.set_irq(9, true);
  ASSERT_TRUE(pic.intr_pending());
  pic.set_irq(9, false);
  EXPECT_EQ(pic.acknowledge(), 0x2f);
  EXPECT_EQ(pic.spurious(), 2u);
  EXPECT_EQ(isr(0x20), 0x04);  // the master did service the cascade
  EXPECT_EQ(isr(0xa0), 0x00);
  ports.write(0x20, 1, 0x20);
  EXPECT_FALSE(pic.intr_pending());
}

TEST_F(PicTest, AutoEoi) {
  init(0x20, 0x28, 0x03);
  pic.set_irq(3, true);
  EXPECT_EQ(pic.acknowledge(), 0x23);
  EXPECT_EQ(isr(0x20), 0x00);
  pic.set_irq(6, true);  // not blocked: nothing is in service
  EXPECT_EQ(pic.acknowledge(), 0x26);
}

TEST_F(PicTest, PollMode) {
  pic.set_irq(6, true);
  pic.set_irq(3, true);
  ports.write(0x20, 1, 0x0c);  // OCW3 poll
  EXPECT_EQ(ports.read(0x20, 1), 0x83u);
  EXPECT_EQ(isr(0x20), 0x08);  // a poll read acts as INTA
  ports.write(0x20, 1, 0x20);
  ports.write(0x20, 1, 0x0c);
  EXPECT_EQ(ports.read(0x20, 1), 0x86u);
  ports.write(0x20, 1, 0x20);
  ports.write(0x20, 1, 0x0c);
  EXPECT_EQ(ports.read(0x20, 1), 0x00u);  // nothing pending
  // Poll is one-shot: the next read is IRR again.
  pic.set_irq(1, true);
  ports.write(0x20, 1, 0x0a);
  EXPECT_EQ(ports.read(0x20, 1), 0x02u);
}

TEST_F(PicTest, SpecialMaskModeLetsLowerLevelsIn) {
  pic.set_irq(3, true);
  EXPECT_EQ(pic.acknowledge(), 0x23);
  pic.set_irq(5, true);
  EXPECT_FALSE(pic.intr_pending());
  // The IR3 handler masks itself and enters special mask mode.
  ports.write(0x21, 1, 0x08);
  ports.write(0x20, 1, 0x68);
  EXPECT_TRUE(pic.intr_pending());
  EXPECT_EQ(pic.acknowledge(), 0x25);
  ports.write(0x20, 1, 0x48);  // leave special mask mode
}

TEST_F(PicTest, NotifiesListenerOnIntrChanges) {
  const int before = cpu.changes;
  pic.set_irq(4, true);
  EXPECT_EQ(cpu.changes, before + 1);
  pic.set_irq(3, true);  // INTR already high: no change
  EXPECT_EQ(cpu.changes, before + 1);
  pic.acknowledge();  // IR3 in service blocks IR4: INTR falls
  EXPECT_EQ(cpu.changes, before + 2);
  ports.write(0x20, 1, 0x20);  // EOI: IR4 raises INTR again
  EXPECT_EQ(cpu.changes, before + 3);
  pic.reset();
  EXPECT_FALSE(pic.intr_pending());
  EXPECT_EQ(cpu.changes, before + 4);
}

TEST_F(PicTest, WordWriteHitsBothPorts) {
  ports.write(0x20, 2, 0xff20);  // EOI to 0x20 and IMR 0xff to 0x21
  EXPECT_EQ(ports.read(0x21, 1), 0xffu);
  EXPECT_EQ(ports.read(0x20, 2) >> 8, 0xffu);
}

TEST_F(PicTest, StateRoundTripsThroughArchive) {
  pic.set_irq(12, true);
  pic.acknowledge();
  std::stringstream ss;
  {
    BinaryOut out(ss);
    pic.save_state(out);
  }
  FakeIntrListener cpu2;
  Pic other(cpu2);
  {
    BinaryIn in(ss);
    other.load_state(in);
  }
  EXPECT_EQ(other.chip(0).isr, 0x04);
  EXPECT_EQ(other.chip(1).isr, 0x10);
  EXPECT_EQ(other.chip(1).vector_base, 0x28);
}

}  // namespace
}  // namespace reel
