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

// Linux 6.1's 8250 driver (drivers/tty/serial/8250/8250_port.c) replayed
// register by register. A 16550A has no EFR, no 64-byte FIFO and no UUE
// bit: every variant probe must fail the way it fails on the real chip.
class LinuxUartTest : public UartTest {
 protected:
  static constexpr u16 kFcr = kIir, kEfr = kIir, kDll = kBase, kDlm = kBase + 1;
  static constexpr u8 kLsrTemtThre = 0x60;

  u16 dl_read() { return static_cast<u16>(rd(kDll) | rd(kDlm) << 8); }
  void dl_write(u16 v) {
    wr(kDll, static_cast<u8>(v));
    wr(kDlm, static_cast<u8>(v >> 8));
  }

  // size_fifo(): loopback at divisor 1, 256 bytes out, then count what the
  // receiver kept. 64 would make Linux call the port a U6_16550A.
  int size_fifo() {
    const u8 old_lcr = rd(kLcr);
    wr(kLcr, 0);
    const u8 old_fcr = rd(kFcr);  // reads IIR: FCR is write-only
    const u8 old_mcr = rd(kMcr);
    wr(kFcr, 0x07);
    wr(kMcr, 0x10);
    wr(kLcr, 0x80);
    const u16 old_dl = dl_read();
    dl_write(1);
    wr(kLcr, 0x03);
    for (int i = 0; i < 256; ++i) wr(kBase, static_cast<u8>(i));
    clock.advance_idle_to(clock.now_ns() + 20'000'000);  // mdelay(20)
    sched.run_due(clock.now_ns());
    int count = 0;
    while ((rd(kLsr) & 0x01) && count < 256) {
      rd(kRbr);
      ++count;
    }
    wr(kFcr, old_fcr);
    wr(kMcr, old_mcr);
    wr(kLcr, 0x80);
    dl_write(old_dl);
    wr(kLcr, old_lcr);
    return count;
  }

  // autoconfig_16550a(); `variants` is CONFIG_SERIAL_8250_16550A_VARIANTS
  // (off by default on x86, on in many distribution kernels).
  std::string autoconfig_16550a(bool variants) {
    if (!variants) return "16550A";
    // EFR at LCR=0x80 (ST16C650V1): the 16550A shows IIR there, not 0.
    wr(kLcr, 0x80);
    if (rd(kEfr) == 0) return "EFRv1 probe passed";
    // EFR at LCR=0xBF (ST16C650V2, TI16C752): IIR again.
    wr(kLcr, 0xbf);
    if (rd(kEfr) == 0) return "EFRv2 probe passed";
    // National Semiconductor SuperIO: MCR LOOP mirrored in EXCR1 (bank 2).
    wr(kLcr, 0);
    const u8 mcr = rd(kMcr);
    wr(kLcr, 0xe0);
    u8 excr1 = rd(kIir);
    if (!((excr1 ^ mcr) & 0x10)) {
      wr(kLcr, 0);
      wr(kMcr, mcr ^ 0x10);
      wr(kLcr, 0xe0);
      excr1 = rd(kIir);
      wr(kLcr, 0);
      wr(kMcr, mcr);
      if ((excr1 ^ mcr) & 0x10) return "NS16550A";
    }
    // TI16750: IIR bit 5 follows FCR bit 5 only with DLAB set.
    wr(kLcr, 0);
    wr(kFcr, 0x21);
    const u8 without_dlab = rd(kIir) >> 5;
    wr(kFcr, 0x01);
    wr(kLcr, 0x80);
    wr(kFcr, 0x21);
    const u8 with_dlab = rd(kIir) >> 5;
    wr(kFcr, 0x01);
    wr(kLcr, 0);
    EXPECT_EQ(without_dlab, 6);
    EXPECT_EQ(with_dlab, 6);
    if (without_dlab == 6 && with_dlab == 7) return "16750";
    // XScale: IER bit 6 (UUE) must not stick.
    const u8 ier = rd(kIer);
    wr(kIer, ier & ~0x40);
    if (!(rd(kIer) & 0x40)) {
      wr(kIer, ier | 0x40);
      if (rd(kIer) & 0x40) return "XScale";
    }
    wr(kIer, ier);
    fifo_size = size_fifo();
    if (fifo_size == 64) return "U6_16550A";
    return "16550A";
  }

  // autoconfig(): the port type Linux settles on.
  std::string autoconfig(bool variants) {
    // Existence test on IER (bits 7-4 masked).
    const u8 saved_ier = rd(kIer);
    wr(kIer, 0);
    const u8 ier_zero = rd(kIer) & 0x0f;
    wr(kIer, 0x0f);
    const u8 ier_all = rd(kIer) & 0x0f;
    wr(kIer, saved_ier);
    if (ier_zero != 0 || ier_all != 0x0f) return "IER test failed";
    const u8 save_mcr = rd(kMcr);
    const u8 save_lcr = rd(kLcr);
    // Loopback test: RTS -> CTS and OUT2 -> DCD, nothing else.
    wr(kMcr, 0x10 | 0x0a);
    const u8 msr = rd(kMsr) & 0xf0;
    wr(kMcr, save_mcr);
    if (msr != 0x90) return "LOOP test failed";
    // Zero the EFR, if any: on a 16550A this writes FCR.
    wr(kLcr, 0xbf);
    wr(kEfr, 0);
    wr(kLcr, 0);
    wr(kFcr, 0x01);
    std::string type;
    switch (rd(kIir) >> 6) {
      case 0:
        type = "8250/16450";
        break;
      case 1:
        type = "unknown";
        break;
      case 2:
        type = "16550";
        break;
      default:
        type = autoconfig_16550a(variants);
        break;
    }
    wr(kLcr, save_lcr);
    // Reset the UART: MCR back, clear and disable the FIFOs, drain RX,
    // interrupts off.
    wr(kMcr, save_mcr);
    wr(kFcr, 0x01);
    wr(kFcr, 0x07);
    wr(kFcr, 0x00);
    rd(kRbr);
    wr(kIer, 0);
    return type;
  }

  // serial8250_do_startup() with an IRQ: the THRE re-assert test that sets
  // UART_BUG_THRE and the TX-enable test that sets UART_BUG_TXEN.
  struct Bugs {
    bool thre = false, txen = false;
  };
  Bugs startup() {
    wr(kFcr, 0x01);
    wr(kFcr, 0x07);
    wr(kFcr, 0x00);
    rd(kLsr);
    rd(kRbr);
    rd(kIir);
    rd(kMsr);
    EXPECT_NE(rd(kLsr), 0xff) << "LSR safety check";
    Bugs bugs;
    EXPECT_EQ(rd(kLsr) & 0x20, 0x20);  // wait_for_xmitr(THRE)
    wr(kIer, 0x02);
    const u8 iir1 = rd(kIir);
    wr(kIer, 0);
    wr(kIer, 0x02);
    const u8 iir2 = rd(kIir);
    wr(kIer, 0);
    bugs.thre = !(iir1 & 0x01) && (iir2 & 0x01);
    EXPECT_EQ(iir1 & 0x0f, 0x02);
    EXPECT_EQ(iir2 & 0x0f, 0x02);
    wr(kLcr, 0x03);
    wr(kMcr, 0x0b);  // DTR, RTS, OUT2
    wr(kIer, 0x02);
    const u8 lsr = rd(kLsr);
    const u8 iir = rd(kIir);
    wr(kIer, 0);
    bugs.txen = (lsr & 0x40) && (iir & 0x01);
    rd(kLsr);
    rd(kRbr);
    rd(kIir);
    rd(kMsr);
    return bugs;
  }

  // serial8250_do_set_termios() for 115200 8N1 on a 16550A: FCR 0x81
  // (FIFO, RX trigger 8), RX and line-status interrupts.
  void set_termios_115200() {
    wr(kIer, 0x05);
    wr(kLcr, 0x83);
    dl_write(1);
    wr(kLcr, 0x03);
    wr(kFcr, 0x01);
    wr(kFcr, 0x81);
  }

  // serial8250_tx_empty(): TIOCSER_TEMT when THRE and TEMT are both set.
  bool tx_empty() { return (rd(kLsr) & kLsrTemtThre) == kLsrTemtThre; }

  int fifo_size = 0;
};

TEST_F(LinuxUartTest, AutoconfigFindsA16550A) {
  EXPECT_EQ(autoconfig(false), "16550A");
  EXPECT_EQ(rd(kIir), 0x01) << "FIFOs off, nothing pending after the reset";
  EXPECT_EQ(rd(kIer), 0x00);
  EXPECT_TRUE(host.output.empty());
  EXPECT_FALSE(irqs.levels[4]);
}

TEST_F(LinuxUartTest, AutoconfigWithEveryVariantProbeStillFindsA16550A) {
  EXPECT_EQ(autoconfig(true), "16550A");
  EXPECT_EQ(fifo_size, 16) << "16 bytes in the receive FIFO, the rest overran";
  EXPECT_TRUE(host.output.empty()) << "loopback bytes never reach the host";
  EXPECT_EQ(rd(kLsr) & 0x9f, 0x00) << "the probe left nothing received or flagged";
  EXPECT_EQ(rd(kMcr), 0x00);
  EXPECT_EQ(rd(kLcr), 0x00);
}

TEST_F(LinuxUartTest, EfrProbesAtLcrBfKeepTheDivisorLatch) {
  // A divisor set by the firmware (or the boot console) survives the
  // probes, which read and write offset 2 with LCR at 0x80, 0xBF and 0xE0.
  wr(kLcr, 0x83);
  dl_write(0x0001);
  wr(kLcr, 0x03);
  EXPECT_EQ(autoconfig(true), "16550A");
  wr(kLcr, 0xbf);  // DLAB is bit 7: 0xBF still selects DLL/DLM on a 16550A
  EXPECT_EQ(dl_read(), 0x0001);
  EXPECT_EQ(rd(kIir) & 0xc0, 0x00) << "offset 2 reads IIR whatever LCR holds";
  wr(kLcr, 0x03);
  EXPECT_EQ(rd(kLcr), 0x03);
}

TEST_F(LinuxUartTest, StartupFindsNoThreOrTxenBugs) {
  ASSERT_EQ(autoconfig(true), "16550A");
  const Bugs bugs = startup();
  EXPECT_FALSE(bugs.thre) << "THRE re-asserts when IER.THRI is set again";
  EXPECT_FALSE(bugs.txen) << "enabling THRI with TEMT set raises the interrupt at once";
  EXPECT_FALSE(irqs.levels[4]);
}

TEST_F(LinuxUartTest, InterruptDrivenTransmitAndTxEmpty) {
  ASSERT_EQ(autoconfig(false), "16550A");
  startup();
  set_termios_115200();
  EXPECT_EQ(rd(kIir), 0xc1) << "FIFOs on, nothing pending";
  EXPECT_TRUE(tx_empty());
  // serial8250_start_tx: IER |= THRI raises IRQ4 with THR empty.
  wr(kIer, 0x07);
  EXPECT_TRUE(irqs.levels[4]);
  // serial8250_handle_irq: IIR says THRE, LSR shows room, up to
  // tx_loadsz (16) bytes go out without looking at LSR in between.
  const std::string text = "Linux version 6.1 (reel) #1\n";
  size_t sent = 0;
  while (sent < text.size()) {
    const u8 iir = rd(kIir);
    ASSERT_EQ(iir & 0x0f, 0x02) << "sent " << sent;
    ASSERT_EQ(rd(kLsr) & 0x20, 0x20);
    for (int n = 0; n < 16 && sent < text.size(); ++n) wr(kBase, static_cast<u8>(text[sent++]));
  }
  EXPECT_EQ(host.output, text);
  // Done: __stop_tx clears THRI; serial8250_tx_empty reports TEMT.
  wr(kIer, 0x05);
  EXPECT_FALSE(irqs.levels[4]);
  EXPECT_EQ(rd(kIir), 0xc1);
  EXPECT_TRUE(tx_empty());
}

TEST_F(LinuxUartTest, ConsoleWriteSavesAndRestoresIer) {
  ASSERT_EQ(autoconfig(false), "16550A");
  startup();
  set_termios_115200();
  wr(kIer, 0x07);
  ASSERT_EQ(rd(kIir) & 0x0f, 0x02);  // the THRE interrupt was taken
  // serial8250_console_write: IER saved and cleared, each byte after
  // wait_for_xmitr(THRE), then wait for BOTH_EMPTY and restore IER.
  const u8 ier = rd(kIer);
  wr(kIer, 0);
  for (char c : std::string("printk\r\n")) {
    ASSERT_EQ(rd(kLsr) & 0x20, 0x20);
    wr(kBase, static_cast<u8>(c));
  }
  EXPECT_TRUE(tx_empty());
  EXPECT_FALSE(irqs.levels[4]) << "IER was 0 while printk wrote";
  wr(kIer, ier);
  EXPECT_TRUE(irqs.levels[4]) << "restoring THRI with THR empty asks for more data";
  EXPECT_EQ(host.output, "printk\r\n");
}

TEST_F(LinuxUartTest, ReceiveAtTriggerLevelWithLinuxFcr) {
  ASSERT_EQ(autoconfig(false), "16550A");
  startup();
  set_termios_115200();
  wr(kMcr, 0x0b);
  send_input("0123456789");
  for (int i = 0; i < 8; ++i) {
    clock.advance_idle_to(*sched.next_deadline());
    sched.run_due(clock.now_ns());
  }
  EXPECT_TRUE(irqs.levels[4]);
  EXPECT_EQ(rd(kIir), 0xc4) << "8 bytes reach FCR 0x81's trigger level";
  // serial8250_rx_chars reads while LSR.DR, up to 256.
  std::string got;
  while (rd(kLsr) & 0x01) got.push_back(static_cast<char>(rd(kRbr)));
  EXPECT_EQ(got, "01234567");
  run_timers();
  while (rd(kLsr) & 0x01) got.push_back(static_cast<char>(rd(kRbr)));
  EXPECT_EQ(got, "0123456789");
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
