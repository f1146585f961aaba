// Register-level behaviour of the PC devices, driven through the port bus
// as a guest would.

#include <gtest/gtest.h>

#include "core/port_bus.h"
#include "core/scheduler.h"
#include "core/virtual_clock.h"
#include "devices/cmos_rtc.h"
#include "devices/debug_exit.h"
#include "devices/i440fx_host_bridge.h"
#include "devices/pci_bus.h"
#include "devices/pci_device.h"
#include "devices/pci_firmware_setup.h"
#include "devices/pic.h"
#include "devices/piix3_isa_bridge.h"
#include "devices/pit.h"
#include "devices/uart.h"
#include "tests/unit/fake_host_io.h"

namespace reel {
namespace {

using test::FakeHostIO;
using test::FakeIrqSink;

class FakeCpu : public IntrListener {
 public:
  void intr_changed() override { ++changes; }
  int changes = 0;
};

class PicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pic.map_into(ports);
    // The init sequence every PC OS uses: vectors 0x20 and 0x28, cascade on IR2.
    for (auto [port, value] : std::initializer_list<std::pair<u16, u8>>{
             {0x20, 0x11}, {0xa0, 0x11}, {0x21, 0x20}, {0xa1, 0x28}, {0x21, 0x04}, {0xa1, 0x02}, {0x21, 0x01},
             {0xa1, 0x01}, {0x21, 0x00}, {0xa1, 0x00}}) {
      ports.write(port, 1, value);
    }
  }
  FakeCpu cpu;
  Pic pic{cpu};
  PortBus ports;
};

TEST_F(PicTest, PriorityAcknowledgeAndEoi) {
  pic.set_irq(4, true);
  pic.set_irq(1, true);
  EXPECT_TRUE(pic.intr_pending());
  EXPECT_EQ(pic.acknowledge(), 0x21);  // IR1 beats IR4
  // IR4 waits: IR1 is in service and has priority.
  EXPECT_FALSE(pic.intr_pending());
  ports.write(0x20, 1, 0x0b);  // OCW3: read ISR
  EXPECT_EQ(ports.read(0x20, 1), 0x02);
  ports.write(0x20, 1, 0x20);  // non-specific EOI
  EXPECT_TRUE(pic.intr_pending());
  EXPECT_EQ(pic.acknowledge(), 0x24);
  ports.write(0x20, 1, 0x0a);  // OCW3: read IRR
  EXPECT_EQ(ports.read(0x20, 1), 0x00);  // both edges were consumed by their INTA cycles
  pic.set_irq(1, false);
  pic.set_irq(1, true);  // a new edge requests again
  ports.write(0x20, 1, 0x0a);
  EXPECT_EQ(ports.read(0x20, 1), 0x02);
}

TEST_F(PicTest, SlaveCascadeAndMask) {
  ports.write(0xa1, 1, 0x01);  // mask IRQ8
  pic.set_irq(8, true);
  EXPECT_FALSE(pic.intr_pending());
  ports.write(0xa1, 1, 0x00);
  EXPECT_TRUE(pic.intr_pending());
  EXPECT_EQ(pic.acknowledge(), 0x28);
  ports.write(0xa0, 1, 0x20);
  ports.write(0x20, 1, 0x20);
  pic.set_irq(8, false);
  pic.set_irq(12, true);
  EXPECT_EQ(pic.acknowledge(), 0x2c);
}

TEST_F(PicTest, SpuriousWhenRequestVanishes) {
  ports.write(0x4d0, 1, 0x20);  // IRQ5 level triggered
  pic.set_irq(5, true);
  EXPECT_TRUE(pic.intr_pending());
  pic.set_irq(5, false);  // withdrawn before INTA
  EXPECT_EQ(pic.acknowledge(), 0x27);
  EXPECT_EQ(pic.spurious(), 1u);
}

TEST_F(PicTest, AutoEoiAndPollMode) {
  ports.write(0x20, 1, 0x11);
  ports.write(0x21, 1, 0x20);
  ports.write(0x21, 1, 0x04);
  ports.write(0x21, 1, 0x03);  // ICW4: auto EOI
  pic.set_irq(3, true);
  EXPECT_EQ(pic.acknowledge(), 0x23);
  ports.write(0x20, 1, 0x0b);
  EXPECT_EQ(ports.read(0x20, 1), 0x00);  // nothing in service
  pic.set_irq(6, true);
  ports.write(0x20, 1, 0x0c);  // poll
  EXPECT_EQ(ports.read(0x20, 1), 0x86);
}

TEST(Pit, Mode2PeriodAndIrq0Edges) {
  Scheduler sched;
  VirtualClock clock;
  FakeIrqSink irqs;
  Pit pit(sched, clock, IrqLine{&irqs, 0});
  PortBus ports;
  pit.map_into(ports);
  ports.write(0x43, 1, 0x34);  // channel 0, lo/hi, mode 2
  ports.write(0x40, 1, 0x9c);  // 11932 = 100 Hz
  ports.write(0x40, 1, 0x2e);
  ASSERT_TRUE(sched.next_deadline().has_value());
  EXPECT_EQ(*sched.next_deadline(), Pit::ticks_to_ns_ceil(11932));
  // Run virtual time to 1 s: 100 edges.
  for (int i = 0; i < 100; ++i) {
    clock.advance_idle_to(*sched.next_deadline());
    sched.run_due(clock.now_ns());
  }
  EXPECT_EQ(irqs.edges[0], 100);
  EXPECT_EQ(clock.now_ns(), Pit::ticks_to_ns_ceil(100 * 11932));
  // The latched count halfway into a period.
  clock.advance_idle_to(clock.now_ns() + 5'000'000);
  ports.write(0x43, 1, 0x00);
  const u32 lo = ports.read(0x40, 1), hi = ports.read(0x40, 1);
  EXPECT_NEAR(static_cast<double>(lo | hi << 8), 11932 / 2.0, 3);
}

TEST(Pit, Channel2GateAndOut2OnPortB) {
  Scheduler sched;
  VirtualClock clock;
  FakeIrqSink irqs;
  Pit pit(sched, clock, IrqLine{&irqs, 0});
  PortBus ports;
  pit.map_into(ports);
  // Linux's PIT calibration: gate on, speaker off, channel 2 mode 0.
  ports.write(0x61, 1, (ports.read(0x61, 1) & ~0x02u) | 0x01);
  ports.write(0x43, 1, 0xb0);
  ports.write(0x42, 1, 0xff);
  ports.write(0x42, 1, 0xff);
  EXPECT_EQ(ports.read(0x61, 1) & 0x20, 0u);  // OUT2 low while counting
  clock.advance_idle_to(Pit::ticks_to_ns_ceil(0xffff) + 1);
  EXPECT_EQ(ports.read(0x61, 1) & 0x20, 0x20u);  // terminal count reached
  // Read-back of channel 2's status: OUT high, mode 0, lo/hi.
  ports.write(0x43, 1, 0xe8);
  EXPECT_EQ(ports.read(0x42, 1), 0x80u | 0x30u | 0x00u);
}

class UartTest : public ::testing::Test {
 protected:
  UartTest() : uart("uart.0", sched, clock, host, 0, IrqLine{&irqs, 4}) { uart.map_into(ports, 0x3f8); }
  Scheduler sched;
  VirtualClock clock;
  FakeHostIO host;
  FakeIrqSink irqs;
  Uart uart;
  PortBus ports;
};

TEST_F(UartTest, LinuxDetectionSequence) {
  // Scratch register, then the loopback test of 8250_port.c's autoconfig.
  ports.write(0x3ff, 1, 0xa5);
  EXPECT_EQ(ports.read(0x3ff, 1), 0xa5u);
  ports.write(0x3fc, 1, 0x10);  // loopback
  EXPECT_EQ(ports.read(0x3fe, 1) & 0xf0, 0x00u);
  ports.write(0x3fc, 1, 0x1a);  // loopback + RTS + OUT2
  EXPECT_EQ(ports.read(0x3fe, 1) & 0xf0, 0x90u);
  // FIFO detection: IIR bits 7-6 become 11 with FIFOs enabled.
  ports.write(0x3fa, 1, 0x01);
  EXPECT_EQ(ports.read(0x3fa, 1) & 0xc0, 0xc0u);
  // A byte sent in loopback comes back.
  ports.write(0x3f8, 1, 'x');
  EXPECT_EQ(ports.read(0x3fd, 1) & 0x01, 0x01u);
  EXPECT_EQ(ports.read(0x3f8, 1), static_cast<u32>('x'));
  EXPECT_TRUE(host.output.empty());
}

TEST_F(UartTest, TransmitAndThreInterrupt) {
  ports.write(0x3fc, 1, 0x0b);  // DTR RTS OUT2
  ports.write(0x3f9, 1, 0x02);  // THRE interrupt
  EXPECT_TRUE(irqs.levels[4]);  // holding register empty at once
  EXPECT_EQ(ports.read(0x3fa, 1) & 0x0f, 0x02u);
  EXPECT_FALSE(irqs.levels[4]);  // reading IIR cleared it
  ports.write(0x3f8, 1, 'A');
  EXPECT_EQ(host.output, "A");
  EXPECT_TRUE(irqs.levels[4]);
  ports.write(0x3fc, 1, 0x03);  // OUT2 off gates the line
  EXPECT_FALSE(irqs.levels[4]);
}

TEST_F(UartTest, HostInputIsPacedAndNeverOverruns) {
  ports.write(0x3fa, 1, 0x01);  // FIFO on, trigger 1
  ports.write(0x3fc, 1, 0x0b);
  ports.write(0x3f9, 1, 0x01);  // RDA interrupt
  std::string input(40, 'k');
  uart.receive(std::span<const u8>(reinterpret_cast<const u8*>(input.data()), input.size()));
  // Nothing arrives before a character time has passed.
  EXPECT_EQ(ports.read(0x3fd, 1) & 0x01, 0u);
  for (int i = 0; i < 200 && sched.next_deadline(); ++i) {
    clock.advance_idle_to(*sched.next_deadline());
    sched.run_due(clock.now_ns());
  }
  // The FIFO filled to 16 and the rest waits; no overrun.
  EXPECT_EQ(ports.read(0x3fd, 1) & 0x03, 0x01u);
  int got = 0;
  while (got < 40) {
    while (ports.read(0x3fd, 1) & 0x01) {
      EXPECT_EQ(ports.read(0x3f8, 1), static_cast<u32>('k'));
      ++got;
    }
    if (!sched.next_deadline()) break;
    clock.advance_idle_to(*sched.next_deadline());
    sched.run_due(clock.now_ns());
  }
  EXPECT_EQ(got, 40);
}

TEST(CmosRtc, DateFromHostInBcdAndBinary) {
  Scheduler sched;
  VirtualClock clock;
  FakeHostIO host;
  FakeIrqSink irqs;
  CmosRtc rtc(sched, clock, host, IrqLine{&irqs, 8}, 128u << 20, std::nullopt);
  PortBus ports;
  rtc.map_into(ports);
  EXPECT_EQ(host.time_reads, 1);
  auto reg = [&](u8 r) {
    ports.write(0x70, 1, r);
    return ports.read(0x71, 1);
  };
  EXPECT_EQ(reg(9), 0x26u);  // BCD year
  EXPECT_EQ(reg(8), 0x11u);
  EXPECT_EQ(reg(7), 0x25u);
  EXPECT_EQ(reg(4), 0x04u);
  EXPECT_EQ(reg(2), 0x43u);
  EXPECT_EQ(reg(0), 0x12u);
  EXPECT_EQ(reg(6), 4u);  // Wednesday (Sunday = 1)
  EXPECT_EQ(reg(0x32), 0x20u);
  // Binary, 12-hour mode.
  ports.write(0x70, 1, 0x0b);
  ports.write(0x71, 1, 0x04);
  EXPECT_EQ(reg(2), 43u);
  EXPECT_EQ(reg(4), 4u);
  // Time follows virtual time only.
  clock.advance_idle_to(61'000'000'000ull);
  EXPECT_EQ(reg(2), 44u);
  EXPECT_EQ(reg(0), 13u);
  // Memory size registers for 128 MiB: the 1 MiB-based count saturates at
  // 0xffff KiB; 112 MiB above 16 MiB in 64 KiB units.
  EXPECT_EQ(reg(0x30) | reg(0x31) << 8, 0xffffu);
  EXPECT_EQ(reg(0x34) | reg(0x35) << 8, 112u * 16);
}

TEST(CmosRtc, PeriodicInterruptAndRegisterC) {
  Scheduler sched;
  VirtualClock clock;
  FakeHostIO host;
  FakeIrqSink irqs;
  CmosRtc rtc(sched, clock, host, IrqLine{&irqs, 8}, 64u << 20, i64{0});
  PortBus ports;
  rtc.map_into(ports);
  ports.write(0x70, 1, 0x0a);
  ports.write(0x71, 1, 0x26);  // 1024 Hz
  ports.write(0x70, 1, 0x0b);
  ports.write(0x71, 1, 0x42);  // PIE
  int fired = 0;
  for (int i = 0; i < 1024; ++i) {
    clock.advance_idle_to(*sched.next_deadline());
    sched.run_due(clock.now_ns());
    if (irqs.levels[8]) {
      ++fired;
      ports.write(0x70, 1, 0x0c);
      EXPECT_EQ(ports.read(0x71, 1) & 0xc0, 0xc0u);
      EXPECT_FALSE(irqs.levels[8]);
    }
  }
  EXPECT_EQ(fired, 1024);
  EXPECT_NEAR(static_cast<double>(clock.now_ns()), 1e9, 1e6);
}

TEST(CmosRtc, CivilConversions) {
  for (i64 s : {i64{0}, i64{951868800}, i64{1795581792}, i64{4102444800}, i64{-86400}}) {
    EXPECT_EQ(CmosRtc::seconds_from_civil(CmosRtc::civil_from_seconds(s)), s);
  }
  const auto c = CmosRtc::civil_from_seconds(951868800);  // 2000-03-01, a Wednesday
  EXPECT_EQ(c.year, 2000);
  EXPECT_EQ(c.month, 3);
  EXPECT_EQ(c.day, 1);
  EXPECT_EQ(c.weekday, 4);
}

class IoDevice : public Device {
 public:
  IoDevice() : Device("io") {}
  void reset() override {}
  u32 read(u32 offset, unsigned) override { return 0x40 + offset; }
  void write(u32, unsigned, u32) override {}
  template <class A>
  void serialize(A&) {}
  REEL_DEVICE_STATE
};

TEST(Pci, ConfigMechanismOneAndBarSizing) {
  PortBus ports;
  PciBus bus;
  bus.map_into(ports);
  I440fxHostBridge host;
  Piix3IsaBridge isa;
  bus.attach(&host);
  bus.attach(&isa);
  IoDevice io;
  PciDevice nic("nic", 3, 0, PciDevice::Identity{0x10ec, 0x8029, 0, 0x020000, 0, 0, 0, 1});
  nic.add_io_bar(0, 0x100, &ports, &io);
  bus.attach(&nic);
  auto cfg_read = [&](unsigned slot, u8 reg) {
    ports.write(0xcf8, 4, 0x80000000u | slot << 11 | reg);
    return ports.read(0xcfc, 4);
  };
  EXPECT_EQ(cfg_read(0, 0), 0x12378086u);
  EXPECT_EQ(cfg_read(1, 0), 0x70008086u);
  EXPECT_EQ(cfg_read(3, 0), 0x802910ecu);
  EXPECT_EQ(cfg_read(7, 0), 0xffffffffu);  // empty slot
  // BAR sizing.
  ports.write(0xcf8, 4, 0x80000000u | 3 << 11 | 0x10);
  ports.write(0xcfc, 4, 0xffffffffu);
  EXPECT_EQ(ports.read(0xcfc, 4), 0xffffff01u);
  // What firmware leaves: BAR at 0xc000, I/O decoding on, IRQ from PIRQ.
  assign_pci_resources(bus, isa);
  EXPECT_EQ(cfg_read(3, 0x10), 0xc001u);
  EXPECT_EQ(cfg_read(3, 0x04) & 0x7, 0x5u);
  EXPECT_EQ(cfg_read(3, 0x3c) & 0xffff, 0x010bu);  // pin A of slot 3 -> PIRQD -> IRQ 11
  EXPECT_EQ(ports.read(0xc005, 1), 0x45u);
  // Moving the BAR moves the registers.
  ports.write(0xcf8, 4, 0x80000000u | 3 << 11 | 0x10);
  ports.write(0xcfc, 4, 0xd001u);
  EXPECT_EQ(ports.read(0xc005, 1), 0xffu);
  EXPECT_EQ(ports.read(0xd005, 1), 0x45u);
  // Byte access to the data window.
  ports.write(0xcf8, 4, 0x80000000u | 3 << 11 | 0x00);
  EXPECT_EQ(ports.read(0xcfe, 2), 0x8029u);
}

TEST(DebugExit, StatusIsValueShiftedOrOne) {
  int status = -1;
  DebugExit dx([&](int s) { status = s; });
  dx.write(0, 1, 0);
  EXPECT_EQ(status, 1);
  dx.write(0, 1, 0x21);
  EXPECT_EQ(status, 0x43);
  EXPECT_EQ(dx.read(0, 4), 0u);
}

}  // namespace
}  // namespace reel
