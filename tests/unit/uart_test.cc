// The 16550A as Linux's 8250 driver, SeaBIOS and our guests probe and use it.

#include "devices/uart.h"

#include <gtest/gtest.h>

#include <string>

#include "core/port_bus.h"
#include "core/scheduler.h"
#include "core/virtual_clock.h"
#include "tests/unit/fake_host_io.h"

namespace reel {
namespace {

using test::FakeHostIO;
using test::FakeIrqSink;

constexpr u16 kBase = 0x3f8;
constexpr u16 kRbr = kBase, kIer = kBase + 1, kIir = kBase + 2, kLcr = kBase + 3, kMcr = kBase + 4,
              kLsr = kBase + 5, kMsr = kBase + 6, kScr = kBase + 7;

class UartTest : public ::testing::Test {
 protected:
  UartTest() : uart("uart.0", sched, clock, host, 0, IrqLine{&irqs, 4}) { uart.map_into(ports, kBase); }
  void run_timers() {
    for (int i = 0; i < 1000 && sched.next_deadline(); ++i) {
      clock.advance_idle_to(*sched.next_deadline());
      sched.run_due(clock.now_ns());
    }
  }
  void send_input(const std::string& s) {
    uart.receive(std::span<const u8>(reinterpret_cast<const u8*>(s.data()), s.size()));
  }
  u8 rd(u16 port) { return static_cast<u8>(ports.read(port, 1)); }
  void wr(u16 port, u8 v) { ports.write(port, 1, v); }

  Scheduler sched;
  VirtualClock clock;
  FakeHostIO host;
  FakeIrqSink irqs;
  Uart uart;
  PortBus ports;
};

TEST_F(UartTest, ResetState) {
  EXPECT_EQ(rd(kIer), 0x00);
  EXPECT_EQ(rd(kIir), 0x01);  // no interrupt, FIFOs off
  EXPECT_EQ(rd(kLcr), 0x00);
  EXPECT_EQ(rd(kLsr), 0x60);  // THRE and TEMT
  EXPECT_FALSE(irqs.levels[4]);
}

TEST_F(UartTest, Linux8250AutoconfigSequence) {
  // Scratch register test.
  wr(kScr, 0xa5);
  EXPECT_EQ(rd(kScr), 0xa5);
  wr(kScr, 0x5a);
  EXPECT_EQ(rd(kScr), 0x5a);
  // IER test: writing 0 reads 0, writing 0x0f reads 0x0f (upper bits zero).
  wr(kIer, 0x00);
  EXPECT_EQ(rd(kIer), 0x00);
  wr(kIer, 0xff);
  EXPECT_EQ(rd(kIer), 0x0f);
  wr(kIer, 0x00);
  // Loopback: MSR's upper nibble mirrors MCR's outputs.
  wr(kMcr, 0x10);
  EXPECT_EQ(rd(kMsr) & 0xf0, 0x00);
  wr(kMcr, 0x1f);
  EXPECT_EQ(rd(kMsr) & 0xf0, 0xf0);
  wr(kMcr, 0x1a);  // loopback + RTS + OUT2
  EXPECT_EQ(rd(kMsr) & 0xf0, 0x90);
  wr(kMcr, 0x00);
  // FIFO probe: with FCR bit 0 set, IIR bits 7-6 read 11 (a 16550A).
  wr(kIir, 0x01);
  EXPECT_EQ(rd(kIir) & 0xc0, 0xc0);
  wr(kIir, 0x00);
  EXPECT_EQ(rd(kIir) & 0xc0, 0x00);
  // Divisor latch with DLAB.
  wr(kLcr, 0x83);
  wr(kBase, 0x01);
  wr(kBase + 1, 0x00);
  EXPECT_EQ(rd(kBase), 0x01);
  wr(kLcr, 0x03);
  EXPECT_EQ(rd(kLcr), 0x03);
  EXPECT_TRUE(host.output.empty());  // probing printed nothing
}

TEST_F(UartTest, LoopbackEchoesAndFlagsMsrDeltas) {
  wr(kMcr, 0x10);
  rd(kMsr);
  wr(kMcr, 0x11);             // DTR -> DSR
  EXPECT_EQ(rd(kMsr), 0x22);  // DSR and delta DSR
  EXPECT_EQ(rd(kMsr), 0x20);  // the delta clears on read
  wr(kBase, 'x');
  EXPECT_EQ(rd(kLsr) & 0x01, 0x01);
  EXPECT_EQ(rd(kRbr), 'x');
  EXPECT_EQ(rd(kLsr) & 0x01, 0x00);
  EXPECT_TRUE(host.output.empty());
}

TEST_F(UartTest, TransmitGoesToHostPerByte) {
  for (char c : std::string("hello\n")) wr(kBase, static_cast<u8>(c));
  EXPECT_EQ(host.output, "hello\n");
  EXPECT_EQ(rd(kLsr) & 0x60, 0x60);  // polled output never waits
}

TEST_F(UartTest, ThreInterruptSemantics) {
  wr(kMcr, 0x08);  // OUT2 enables the IRQ pin
  wr(kIer, 0x02);
  EXPECT_TRUE(irqs.levels[4]);  // enabling with THR empty raises it at once
  EXPECT_EQ(rd(kIir), 0x02);
  EXPECT_FALSE(irqs.levels[4]);  // reading IIR cleared it
  EXPECT_EQ(rd(kIir), 0x01);
  // Each byte written raises it again once the byte has left, with a fresh
  // rising edge for the edge-triggered PIC.
  const int edges = irqs.edges[4];
  wr(kBase, 'A');
  EXPECT_TRUE(irqs.levels[4]);
  EXPECT_EQ(irqs.edges[4], edges + 1);
  wr(kBase, 'B');
  EXPECT_EQ(irqs.edges[4], edges + 2);
  EXPECT_EQ(host.output, "AB");
  // Disabling the interrupt drops the line; reading LSR does not clear it.
  rd(kLsr);
  EXPECT_TRUE(irqs.levels[4]);
  wr(kIer, 0x00);
  EXPECT_FALSE(irqs.levels[4]);
}

TEST_F(UartTest, Out2GatesTheIrqPin) {
  wr(kIer, 0x02);
  EXPECT_FALSE(irqs.levels[4]);  // pending, but OUT2 is low
  EXPECT_EQ(rd(kIir) & 0x0f, 0x01 ^ 0x03);
  wr(kIer, 0x00);
  wr(kIer, 0x02);
  wr(kMcr, 0x08);
  EXPECT_TRUE(irqs.levels[4]);
  wr(kMcr, 0x00);
  EXPECT_FALSE(irqs.levels[4]);
}

TEST_F(UartTest, FifoTriggerLevelAndCharacterTimeout) {
  wr(kIir, 0x87);  // FIFO on, clear both, trigger 8
  wr(kMcr, 0x0b);
  wr(kIer, 0x01);
  send_input("abcd");
  run_timers();
  // Four bytes are below the trigger: only the character timeout fires.
  EXPECT_TRUE(irqs.levels[4]);
  EXPECT_EQ(rd(kIir), 0xcc);
  std::string got;
  while (rd(kLsr) & 0x01) got.push_back(static_cast<char>(rd(kRbr)));
  EXPECT_EQ(got, "abcd");
  EXPECT_EQ(rd(kIir), 0xc1);
  EXPECT_FALSE(irqs.levels[4]);
  // Eight bytes reach the trigger level: received data available.
  send_input("12345678");
  for (int i = 0; i < 8; ++i) {
    clock.advance_idle_to(*sched.next_deadline());
    sched.run_due(clock.now_ns());
  }
  EXPECT_EQ(rd(kIir), 0xc4);
}

TEST_F(UartTest, HostInputWaitsInsteadOfOverrunning) {
  wr(kIir, 0x01);
  send_input(std::string(40, 'k'));
  EXPECT_EQ(rd(kLsr) & 0x01, 0x00);  // a character time must pass first
  run_timers();
  EXPECT_EQ(rd(kLsr) & 0x03, 0x01);  // 16 in the FIFO, no overrun
  int got = 0;
  for (int round = 0; round < 10 && got < 40; ++round) {
    while (rd(kLsr) & 0x01) {
      EXPECT_EQ(rd(kRbr), 'k');
      ++got;
    }
    run_timers();
  }
  EXPECT_EQ(got, 40);
  EXPECT_EQ(uart.overruns(), 0u);
}

TEST_F(UartTest, LoopbackOverrunSetsOeAndRaisesLineStatus) {
  wr(kMcr, 0x10);
  wr(kIer, 0x04);
  wr(kBase, '1');
  wr(kBase, '2');  // no FIFO: the unread byte is overwritten
  EXPECT_EQ(uart.overruns(), 1u);
  EXPECT_EQ(rd(kIir), 0x06);
  EXPECT_EQ(rd(kLsr) & 0x03, 0x03);
  EXPECT_EQ(rd(kLsr) & 0x02, 0x00);  // OE clears on read
  EXPECT_EQ(rd(kRbr), '2');
}

TEST_F(UartTest, InterruptPriorityRlsOverRdaOverThre) {
  wr(kMcr, 0x18);  // loopback, so the test can make input
  wr(kIer, 0x07);
  wr(kBase, 'a');
  wr(kBase, 'b');             // overrun
  EXPECT_EQ(rd(kIir), 0x06);  // line status first
  rd(kLsr);
  EXPECT_EQ(rd(kIir), 0x04);  // then received data
  rd(kRbr);
  EXPECT_EQ(rd(kIir), 0x02);  // then THRE
  EXPECT_EQ(rd(kIir), 0x01);
}

TEST_F(UartTest, ModemStatusInterrupt) {
  wr(kMcr, 0x18);
  rd(kMsr);
  wr(kIer, 0x08);
  wr(kMcr, 0x1a);  // RTS -> CTS changes
  EXPECT_EQ(rd(kIir), 0x00);
  EXPECT_EQ(rd(kMsr) & 0x0f, 0x01);
  EXPECT_EQ(rd(kIir), 0x01);
}

TEST_F(UartTest, ConfigurableBaseAndIrq) {
  FakeIrqSink irqs3;
  Uart com2("uart.1", sched, clock, host, 1, IrqLine{&irqs3, 3});
  PortBus bus;
  com2.map_into(bus, 0x2f8);
  bus.write(0x2fc, 1, 0x08);
  bus.write(0x2f9, 1, 0x02);
  EXPECT_TRUE(irqs3.levels[3]);
  EXPECT_EQ(bus.read(0x3f8, 1), 0xffu);  // nothing at COM1 on this bus
}

}  // namespace
}  // namespace reel
