// The NE2000 (DP8390 core, ISA and PCI front-ends) as Linux's ne.c and
// ne2k-pci.c, lib8390.c and iPXE's ns8390.c drive it, register by register,
// plus every guest register abuse that broke QEMU's model.

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "core/port_bus.h"
#include "devices/i440fx_host_bridge.h"
#include "devices/ne2000_isa.h"
#include "devices/ne2000_pci.h"
#include "devices/pci_bus.h"
#include "devices/pci_firmware_setup.h"
#include "devices/piix3_isa_bridge.h"
#include "netstack/hub.h"
#include "tests/unit/fake_host_io.h"

namespace reel {
namespace {

using test::FakeIrqSink;
using Mac = Dp8390::MacAddress;
using Bytes = std::vector<u8>;

// Register offsets (page in the comment).
constexpr u8 kCr = 0x00;
constexpr u8 kPstart = 0x01, kPstop = 0x02, kBnry = 0x03, kTpsr = 0x04, kTbcr0 = 0x05, kTbcr1 = 0x06,
             kIsr = 0x07, kRsar0 = 0x08, kRsar1 = 0x09, kRbcr0 = 0x0a, kRbcr1 = 0x0b, kRcr = 0x0c,
             kTcr = 0x0d, kDcr = 0x0e, kImr = 0x0f;  // page 0, write
constexpr u8 kClda0 = 0x01, kTsr = 0x04, kCrda0 = 0x08, kCrda1 = 0x09, kRsr = 0x0c, kCntr0 = 0x0d,
             kCntr2 = 0x0f;                             // page 0, read
constexpr u8 kPar0 = 0x01, kCurr = 0x07, kMar0 = 0x08;  // page 1
constexpr u8 kDataPort = 0x10, kResetPort = 0x1f;

// CR values as the drivers spell them.
constexpr u8 kStop = 0x01, kStart = 0x02, kTrans = 0x04, kRread = 0x08, kRwrite = 0x10, kNoDma = 0x20;
constexpr u8 kPage0 = 0x00, kPage1 = 0x40, kPage2 = 0x80, kPage3 = 0xc0;

// ISR bits.
constexpr u8 kPrx = 0x01, kPtx = 0x02, kTxe = 0x08, kOvw = 0x10, kCnt = 0x20, kRdc = 0x40, kRst = 0x80;

// Linux's NE2000 layout: 6 transmit pages at 0x40, the ring above.
constexpr u8 kTxStart = 0x40, kRxStart = 0x46, kRxStop = 0x80;

constexpr Mac kMac = Dp8390::kDefaultMac;
constexpr Mac kOtherMac{0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
constexpr Mac kPeerMac{0x52, 0x54, 0x00, 0x99, 0x88, 0x77};
constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

Bytes make_frame(const Mac& dst, size_t len, u8 seed = 0) {
  Bytes f(len);
  for (size_t i = 0; i < len; ++i) f[i] = static_cast<u8>(seed + i * 7);
  for (size_t i = 0; i < 6 && i < len; ++i) f[i] = dst[i];
  for (size_t i = 6; i < 12 && i < len; ++i) f[i] = kPeerMac[i - 6];
  if (len >= 14) {
    f[12] = 0x08;
    f[13] = 0x00;
  }
  return f;
}

// The other end of the wire: records what reaches it, sends what it is told.
class TestPort : public FramePort {
 public:
  void receive_frame(std::span<const u8> frame) override { frames.emplace_back(frame.begin(), frame.end()); }
  std::string describe_port() const override { return "model=test"; }
  void send(const Bytes& frame) { transmit(frame); }
  std::vector<Bytes> frames;
};

std::string save_binary(Device& d) {
  std::ostringstream os;
  {
    BinaryOut ar(os);
    d.save_state(ar);
  }
  return os.str();
}

void load_binary(Device& d, const std::string& bytes) {
  std::istringstream is(bytes);
  BinaryIn ar(is);
  d.load_state(ar);
}

std::string dump_json(Device& d) {
  std::ostringstream os;
  {
    JsonOut ar(os);
    d.dump_state(ar);
  }
  return os.str();
}

u64 state_hash(Device& d) {
  const std::string bytes = save_binary(d);
  return XXH3_64bits(bytes.data(), bytes.size());
}

// Register and remote-DMA access in the drivers' words, over any base.
class Driver {
 public:
  Driver(PortBus& ports, u16 base) : m_ports(ports), m_base(base) {}

  u8 rd(u8 reg) { return static_cast<u8>(m_ports.read(static_cast<u16>(m_base + reg), 1)); }
  void wr(u8 reg, u8 v) { m_ports.write(static_cast<u16>(m_base + reg), 1, v); }
  u32 in(u8 reg, unsigned size) { return m_ports.read(static_cast<u16>(m_base + reg), size); }
  void out(u8 reg, unsigned size, u32 v) { m_ports.write(static_cast<u16>(m_base + reg), size, v); }

  // A page switch as iPXE writes it: no STA/STP, no DMA command.
  void page(u8 p) { wr(kCr, static_cast<u8>(p << 6)); }

  // NS8390_init() of lib8390.c followed by the start, as ei_open leaves it.
  void linux_init(bool word, const Mac& par = kMac) {
    wr(kCr, kPage0 | kNoDma | kStop);
    wr(kDcr, word ? 0x49 : 0x48);
    wr(kRbcr0, 0);
    wr(kRbcr1, 0);
    wr(kRcr, 0x20);  // monitor
    wr(kTcr, 0x02);  // loopback
    wr(kTpsr, kTxStart);
    wr(kPstart, kRxStart);
    wr(kBnry, kRxStop - 1);
    wr(kPstop, kRxStop);
    wr(kIsr, 0xff);
    wr(kImr, 0x00);
    wr(kCr, kPage1 | kNoDma | kStop);
    for (int i = 0; i < 6; ++i) wr(static_cast<u8>(kPar0 + i), par[i]);
    for (int i = 0; i < 8; ++i) wr(static_cast<u8>(kMar0 + i), 0x00);
    wr(kCurr, kRxStart);
    wr(kCr, kPage0 | kNoDma | kStop);
    wr(kIsr, 0xff);
    wr(kImr, 0x3f);  // ENISR_ALL
    wr(kCr, kPage0 | kNoDma | kStart);
    wr(kTcr, 0x00);
    wr(kRcr, 0x04);  // broadcasts
  }

  void start_dma(u8 cmd, u16 addr, u16 count) {
    wr(kCr, kPage0 | kNoDma | kStart);
    wr(kRbcr0, static_cast<u8>(count));
    wr(kRbcr1, static_cast<u8>(count >> 8));
    wr(kRsar0, static_cast<u8>(addr));
    wr(kRsar1, static_cast<u8>(addr >> 8));
    wr(kCr, cmd | kStart);
  }

  // Reads `count` bytes of card memory with accesses of `width` bytes
  // (1: insb in byte mode; 2: insw in word mode; 4: insl in word mode).
  Bytes dma_read(u16 addr, u16 count, unsigned width) {
    start_dma(kRread, addr, count);
    Bytes out;
    while (out.size() < count) {
      const u32 v = in(kDataPort, width);
      for (unsigned i = 0; i < width && out.size() < count; ++i) out.push_back(static_cast<u8>(v >> (8 * i)));
    }
    wr(kIsr, kRdc);
    return out;
  }

  void dma_write(u16 addr, const Bytes& data, unsigned width) {
    const u16 count = static_cast<u16>((data.size() + width - 1) / width * width);
    start_dma(kRwrite, addr, count);
    for (size_t i = 0; i < count; i += width) {
      u32 v = 0;
      for (unsigned b = 0; b < width; ++b) v |= u32{i + b < data.size() ? data[i + b] : u8{0}} << (8 * b);
      out(kDataPort, width, v);
    }
    wr(kIsr, kRdc);
  }

  void send(const Bytes& frame, unsigned width, u8 tpsr = kTxStart) {
    dma_write(static_cast<u16>(tpsr << 8), frame, width);
    wr(kTpsr, tpsr);
    wr(kTbcr0, static_cast<u8>(frame.size()));
    wr(kTbcr1, static_cast<u8>(frame.size() >> 8));
    wr(kCr, kPage0 | kNoDma | kTrans | kStart);
  }

  u8 curr() {
    page(1);
    const u8 v = rd(kCurr);
    page(0);
    return v;
  }

  // lib8390.c's ei_receive(): frames from BNRY+1 up to CURR, BNRY trailing.
  std::vector<Bytes> drain_ring(unsigned width) {
    std::vector<Bytes> frames;
    const u8 pstart = kRxStart, pstop = kRxStop;
    for (int guard = 0; guard < 256; ++guard) {
      const u8 current = curr();
      u8 this_frame = static_cast<u8>(rd(kBnry) + 1);
      if (this_frame >= pstop) this_frame = pstart;
      if (this_frame == current) break;
      const Bytes hdr = dma_read(static_cast<u16>(this_frame << 8), 4, width);
      const u16 count = static_cast<u16>(hdr[2] | hdr[3] << 8);
      frames.push_back(dma_read(static_cast<u16>((this_frame << 8) + 4), static_cast<u16>(count - 4), width));
      const u8 next = hdr[1];
      wr(kBnry, next == pstart ? static_cast<u8>(pstop - 1) : static_cast<u8>(next - 1));
    }
    return frames;
  }

 private:
  PortBus& m_ports;
  u16 m_base;
};

// ---------------------------------------------------------------------------
// ISA card at 0x300, IRQ 9, on a hub with a test port.

class Ne2000IsaTest : public ::testing::Test {
 protected:
  static constexpr u16 kBase = Ne2000Isa::kDefaultIobase;
  static constexpr unsigned kIrq = Ne2000Isa::kDefaultIrq;

  Ne2000IsaTest() {
    nic.map_into(ports);
    hub.attach(nic, "ne2k_isa.0");
    hub.attach(peer, "peer");
  }

  u8 rd(u8 reg) { return drv.rd(reg); }
  void wr(u8 reg, u8 v) { drv.wr(reg, v); }
  std::vector<u8> ram_snapshot() {
    std::vector<u8> v;
    for (u32 a = Dp8390::kRamStart; a < Dp8390::kRamEnd; ++a) v.push_back(nic.peek(static_cast<u16>(a)));
    return v;
  }

  PortBus ports;
  FakeIrqSink irqs;
  Ne2000Isa nic{"ne2000.0", kMac, kBase, IrqLine{&irqs, kIrq}};
  Hub hub{0};
  TestPort peer;
  Driver drv{ports, kBase};
};

TEST_F(Ne2000IsaTest, PowerOnState) {
  EXPECT_EQ(rd(kCr), 0x21);  // stopped, remote DMA aborted, page 0
  EXPECT_EQ(rd(kIsr), kRst);
  EXPECT_EQ(rd(0x0a), 0x50);  // RTL8029 ID 'P'
  EXPECT_EQ(rd(0x0b), 0x43);  // 'C'
  EXPECT_FALSE(irqs.levels[kIrq]);
  EXPECT_EQ(nic.describe_port(), "model=ne2k_isa,macaddr=52:54:00:12:34:56");
  EXPECT_EQ(nic.name(), "ne2000.0");
}

TEST_F(Ne2000IsaTest, LinuxNeProbeByteMode) {
  // ne_probe1(): CR must not float.
  const u8 reg0 = rd(kCr);
  ASSERT_NE(reg0, 0xff);
  // "Do a preliminary verification that we have a 8390."
  wr(kCr, kNoDma | kPage1 | kStop);
  (void)rd(0x0d);
  wr(0x0d, 0xff);  // MAR5
  wr(kCr, kNoDma | kPage0);
  (void)rd(kCntr0);  // clears the counter
  EXPECT_EQ(rd(kCntr0), 0);
  // Reset and wait for the acknowledgement.
  wr(kResetPort, rd(kResetPort));
  EXPECT_TRUE(rd(kIsr) & kRst);
  wr(kIsr, 0xff);
  // The station-address PROM, byte wide.
  const u8 seq[][2] = {{kNoDma | kPage0 | kStop, kCr},
                       {0x48, kDcr},
                       {0x00, kRbcr0},
                       {0x00, kRbcr1},
                       {0x00, kImr},
                       {0xff, kIsr},
                       {0x20, kRcr},
                       {0x02, kTcr},
                       {32, kRbcr0},
                       {0, kRbcr1},
                       {0, kRsar0},
                       {0, kRsar1},
                       {kRread | kStart, kCr}};
  for (const auto& s : seq) wr(s[1], s[0]);
  u8 prom[32];
  int wordlength = 2;
  for (int i = 0; i < 32; i += 2) {
    prom[i] = static_cast<u8>(drv.in(kDataPort, 1));
    prom[i + 1] = static_cast<u8>(drv.in(kDataPort, 1));
    if (prom[i] != prom[i + 1]) wordlength = 1;
  }
  EXPECT_EQ(wordlength, 2);  // the doubled PROM says "16-bit card"
  EXPECT_TRUE(rd(kIsr) & kRdc);
  for (int i = 0; i < 16; ++i) prom[i] = prom[i + i];
  EXPECT_EQ(prom[14], 0x57);
  EXPECT_EQ(prom[15], 0x57);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(prom[i], kMac[i]);
  // Not an RTL8019AS (whose RBCR reads 0x50 0x70 in 8-bit mode).
  EXPECT_FALSE(rd(kRbcr0) == 0x50 && rd(kRbcr1) == 0x70);
  EXPECT_EQ(nic.counters().dma_idle, 0u);
  EXPECT_EQ(nic.counters().dma_out_of_range, 0u);
}

TEST_F(Ne2000IsaTest, LinuxNeAutoIrqProbe) {
  // ne.c finds its IRQ with a zero-length remote read: RDC at once.
  wr(kIsr, 0xff);
  wr(kImr, 0x50);
  wr(kRbcr0, 0);
  wr(kRbcr1, 0);
  wr(kCr, kRread | kStart);
  EXPECT_TRUE(irqs.levels[kIrq]);
  EXPECT_EQ(irqs.edges[kIrq], 1);
  wr(kImr, 0x00);
  EXPECT_FALSE(irqs.levels[kIrq]);
}

TEST_F(Ne2000IsaTest, PromInWordMode) {
  wr(kDcr, 0x49);
  const Bytes prom = drv.dma_read(0, 32, 2);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(prom[2 * i], kMac[i]);
    EXPECT_EQ(prom[2 * i + 1], kMac[i]);
  }
  for (int i = 12; i < 28; ++i) EXPECT_EQ(prom[i], 0);
  for (int i = 28; i < 32; ++i) EXPECT_EQ(prom[i], 0x57);
  // A byte access in word mode moves a whole word and returns its low
  // byte: ne2k-pci's 32 inb()s yield the MAC in the first six.
  drv.start_dma(kRread, 0, 32);
  u8 sa[32];
  for (int i = 0; i < 32; ++i) sa[i] = static_cast<u8>(drv.in(kDataPort, 1));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(sa[i], kMac[i]);
  EXPECT_EQ(sa[14], 0x57);
  // Sixteen of those reads ran past the byte count: nothing moves.
  for (int i = 16; i < 32; ++i) EXPECT_EQ(sa[i], 0xff);
  EXPECT_EQ(nic.counters().dma_idle, 16u);
}

TEST_F(Ne2000IsaTest, PromIsReadOnly) {
  wr(kDcr, 0x48);
  drv.dma_write(0, Bytes(6, 0x11), 1);
  EXPECT_EQ(nic.peek(0), kMac[0]);
  EXPECT_EQ(nic.counters().dma_out_of_range, 6u);
}

TEST_F(Ne2000IsaTest, RemoteDmaByteMode) {
  wr(kDcr, 0x48);
  const Bytes data = make_frame(kBroadcast, 37, 3);
  drv.dma_write(0x4123, data, 1);
  EXPECT_EQ(drv.dma_read(0x4123, 37, 1), data);
  // CRDA ends one past the last byte, as ne.c's sanity check expects.
  EXPECT_EQ(rd(kCrda0) | rd(kCrda1) << 8, 0x4123 + 37);
}

TEST_F(Ne2000IsaTest, RemoteDmaWordMode) {
  wr(kDcr, 0x49);
  const Bytes data = make_frame(kBroadcast, 64, 5);
  drv.dma_write(0x5000, data, 2);
  EXPECT_EQ(drv.dma_read(0x5000, 64, 2), data);
  EXPECT_EQ(nic.peek(0x5000), data[0]);
  EXPECT_EQ(nic.peek(0x5001), data[1]);  // little-endian words
}

TEST_F(Ne2000IsaTest, RemoteDmaDwordAccess) {
  wr(kDcr, 0x49);
  const Bytes data = make_frame(kBroadcast, 100, 9);
  drv.dma_write(0x6000, data, 4);
  EXPECT_EQ(drv.dma_read(0x6000, 100, 4), data);
  // Byte mode moves four bytes per 32-bit access too.
  wr(kDcr, 0x48);
  EXPECT_EQ(drv.dma_read(0x6000, 100, 4), data);
  EXPECT_EQ(drv.dma_read(0x6000, 100, 2), data);
}

TEST_F(Ne2000IsaTest, RemoteDmaCompletionSetsRdc) {
  wr(kDcr, 0x49);
  wr(kIsr, 0xff);
  wr(kImr, kRdc);
  drv.start_dma(kRwrite, 0x4000, 6);
  drv.out(kDataPort, 2, 0x1111);
  drv.out(kDataPort, 2, 0x2222);
  EXPECT_FALSE(rd(kIsr) & kRdc);
  EXPECT_FALSE(irqs.levels[kIrq]);
  drv.out(kDataPort, 2, 0x3333);
  EXPECT_TRUE(rd(kIsr) & kRdc);
  EXPECT_TRUE(irqs.levels[kIrq]);
  // An odd count in word mode: the last word completes it (iPXE rounds up).
  wr(kIsr, kRdc);
  drv.start_dma(kRwrite, 0x4000, 3);
  drv.out(kDataPort, 2, 0xaaaa);
  EXPECT_FALSE(rd(kIsr) & kRdc);
  drv.out(kDataPort, 2, 0xbbbb);
  EXPECT_TRUE(rd(kIsr) & kRdc);
  EXPECT_EQ(nic.peek(0x4003), 0xbb);
  // Further data-port writes go nowhere.
  drv.out(kDataPort, 2, 0xcccc);
  EXPECT_EQ(nic.peek(0x4004), 0x33);  // still the first transfer's
  EXPECT_EQ(nic.counters().dma_idle, 1u);
}

TEST_F(Ne2000IsaTest, AbortStopsRemoteDma) {
  wr(kDcr, 0x48);
  drv.start_dma(kRread, 0x4000, 10);
  (void)drv.in(kDataPort, 1);
  wr(kCr, kNoDma | kStart);
  EXPECT_EQ(drv.in(kDataPort, 1), 0xffu);
  EXPECT_FALSE(rd(kIsr) & kRdc);
  EXPECT_EQ(nic.counters().dma_idle, 1u);
}

TEST_F(Ne2000IsaTest, DataPortAliasesAndIdleReads) {
  EXPECT_EQ(drv.in(kDataPort, 1), 0xffu);  // no DMA running
  EXPECT_EQ(drv.in(kDataPort, 2), 0xffffu);
  EXPECT_EQ(drv.in(kDataPort, 4), 0xffffffffu);
  wr(kDcr, 0x48);
  drv.dma_write(0x4000, {1, 2, 3, 4}, 1);
  drv.start_dma(kRread, 0x4000, 4);
  EXPECT_EQ(drv.in(0x13, 1), 1u);  // 0x10-0x17 all reach the data port
  EXPECT_EQ(drv.in(0x17, 1), 2u);
}

TEST_F(Ne2000IsaTest, RemoteDmaWrapsAtPstop) {
  wr(kDcr, 0x49);
  wr(kPstart, 0x50);
  wr(kPstop, 0x60);
  Bytes tail(16, 0xaa), head(16, 0xbb);
  drv.dma_write(0x5ff0, tail, 2);
  drv.dma_write(0x5000, head, 2);
  const Bytes got = drv.dma_read(0x5ff0, 32, 2);
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), got.begin()));
  EXPECT_TRUE(std::equal(head.begin(), head.end(), got.begin() + 16));
}

TEST_F(Ne2000IsaTest, WordModeByteOrderAndAlignment) {
  wr(kDcr, 0x49);
  drv.dma_write(0x4000, {0x12, 0x34}, 2);
  wr(kDcr, 0x4b);  // BOS: big-endian words
  drv.start_dma(kRread, 0x4000, 2);
  EXPECT_EQ(drv.in(kDataPort, 2), 0x1234u);
  wr(kDcr, 0x49);
  drv.start_dma(kRread, 0x4001, 2);  // odd start: A0 is ignored in word mode
  EXPECT_EQ(drv.in(kDataPort, 2), 0x3412u);
}

TEST_F(Ne2000IsaTest, IpxeMemoryProbeFindsSixteenBitCard) {
  // ns8390.c eth_probe(): an 8-bit test at 0x2000 must fail, the 16-bit
  // one at 0x4000 succeed, and every write must end in RDC.
  const Bytes test = {'N', 'E', '*', '0', '0', '0', ' ', 'm', 'e', 'm', 'o', 'r', 'y', 0};
  wr(kResetPort, rd(kResetPort));
  wr(kCr, kStop | kNoDma);
  wr(kRcr, 0x20);
  wr(kDcr, 0x48);
  wr(kPstart, 0x20);
  wr(kPstop, 0x40);
  drv.dma_write(0x2000, test, 1);
  EXPECT_NE(drv.dma_read(0x2000, 14, 1), test);
  wr(kDcr, 0x49);
  wr(kPstart, 0x40);
  wr(kPstop, 0x80);
  drv.dma_write(0x4000, test, 2);
  EXPECT_EQ(drv.dma_read(0x4000, 14, 2), test);
  const Bytes rom = drv.dma_read(0, 16, 2);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(rom[i + i], kMac[i]);
  EXPECT_EQ(nic.counters().dma_out_of_range, 28u);  // the 8-bit probe's writes and reads
}

TEST_F(Ne2000IsaTest, TransmitThroughHub) {
  drv.linux_init(true);
  const Bytes frame = make_frame(kPeerMac, 60, 1);
  drv.send(frame, 2);
  ASSERT_EQ(peer.frames.size(), 1u);
  EXPECT_EQ(peer.frames[0], frame);
  EXPECT_EQ(rd(kCr) & kTrans, 0);  // TXP clears when the frame is out
  EXPECT_EQ(rd(kTsr), 0x01);       // PTX
  EXPECT_TRUE(rd(kIsr) & kPtx);
  EXPECT_TRUE(irqs.levels[kIrq]);
  wr(kIsr, kPtx);
  EXPECT_FALSE(irqs.levels[kIrq]);
  EXPECT_EQ(nic.counters().tx_frames, 1u);
  // CLDA follows the local DMA to the end of the frame.
  EXPECT_EQ(rd(kClda0) | rd(0x02) << 8, (kTxStart << 8) + 60);
}

TEST_F(Ne2000IsaTest, TransmitSendsExactlyTbcr) {
  // The chip does not pad: the driver is expected to.
  drv.linux_init(true);
  const Bytes frame = make_frame(kPeerMac, 42, 2);
  drv.send(frame, 2);
  ASSERT_EQ(peer.frames.size(), 1u);
  EXPECT_EQ(peer.frames[0].size(), 42u);
  // 1514 bytes with 32-bit writes, as ne2k-pci does on an RTL8029.
  const Bytes big = make_frame(kPeerMac, 1514, 3);
  drv.send(big, 4);
  ASSERT_EQ(peer.frames.size(), 2u);
  EXPECT_EQ(peer.frames[1], big);
}

TEST_F(Ne2000IsaTest, TransmitWhileStoppedDoesNothing) {
  drv.linux_init(true);
  wr(kCr, kNoDma | kStop);
  wr(kTpsr, kTxStart);
  wr(kTbcr0, 60);
  wr(kTbcr1, 0);
  wr(kCr, kNoDma | kStop | kTrans);
  EXPECT_TRUE(peer.frames.empty());
  EXPECT_EQ(rd(kCr) & kTrans, 0);
  EXPECT_EQ(nic.counters().tx_stopped, 1u);
}

TEST_F(Ne2000IsaTest, TransmitOutOfRangeAborts) {
  drv.linux_init(true);
  wr(kIsr, 0xff);
  const struct {
    u8 tpsr;
    u16 tbcr;
  } cases[] = {{0xbf, 0x200}, {0x00, 60}, {0x3f, 0x200}, {0xff, 0xffff}, {0xc0, 60}};
  u64 n = 0;
  for (const auto& c : cases) {
    wr(kTpsr, c.tpsr);
    wr(kTbcr0, static_cast<u8>(c.tbcr));
    wr(kTbcr1, static_cast<u8>(c.tbcr >> 8));
    wr(kCr, kNoDma | kStart | kTrans);
    EXPECT_EQ(rd(kTsr), 0x08) << int{c.tpsr};  // ABT
    EXPECT_TRUE(rd(kIsr) & kTxe);
    EXPECT_TRUE(irqs.levels[kIrq]);
    wr(kIsr, kTxe);
    ++n;
  }
  EXPECT_TRUE(peer.frames.empty());
  EXPECT_EQ(nic.counters().tx_out_of_range + nic.counters().tx_oversize, n);
  // Inside memory but longer than any Ethernet frame.
  wr(kTpsr, 0x40);
  wr(kTbcr0, static_cast<u8>(1600));
  wr(kTbcr1, static_cast<u8>(1600 >> 8));
  wr(kCr, kNoDma | kStart | kTrans);
  EXPECT_EQ(rd(kTsr), 0x08);
  EXPECT_TRUE(peer.frames.empty());
  EXPECT_GE(nic.counters().tx_oversize, 1u);
}

TEST_F(Ne2000IsaTest, ReceiveIntoRingWithHeader) {
  drv.linux_init(true);
  const Bytes frame = make_frame(kMac, 100, 4);
  peer.send(frame);
  // The header at CURR: status, next page, byte count (frame + header).
  const u16 at = kRxStart << 8;
  EXPECT_EQ(nic.peek(at), 0x01);  // PRX, physical
  EXPECT_EQ(nic.peek(at + 1), kRxStart + 1);
  EXPECT_EQ(nic.peek(at + 2), 104);
  EXPECT_EQ(nic.peek(at + 3), 0);
  EXPECT_EQ(drv.curr(), kRxStart + 1);
  EXPECT_EQ(rd(kRsr), 0x01);
  EXPECT_TRUE(rd(kIsr) & kPrx);
  EXPECT_TRUE(irqs.levels[kIrq]);
  const auto frames = drv.drain_ring(2);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], frame);
  EXPECT_EQ(rd(kBnry), kRxStart);
  EXPECT_EQ(nic.counters().rx_frames, 1u);
}

TEST_F(Ne2000IsaTest, ShortFramesArePaddedToSixty) {
  drv.linux_init(false);
  const Bytes frame = make_frame(kMac, 42, 6);
  peer.send(frame);
  const auto frames = drv.drain_ring(1);
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].size(), 60u);
  EXPECT_TRUE(std::equal(frame.begin(), frame.end(), frames[0].begin()));
  EXPECT_TRUE(std::all_of(frames[0].begin() + 42, frames[0].end(), [](u8 b) { return b == 0; }));
}

TEST_F(Ne2000IsaTest, BroadcastAndMulticastSetPhyStatus) {
  drv.linux_init(true);
  peer.send(make_frame(kBroadcast, 60));
  EXPECT_EQ(rd(kRsr), 0x21);  // PRX | PHY (group address)
  EXPECT_EQ(nic.peek(kRxStart << 8), 0x21);
}

TEST_F(Ne2000IsaTest, ReceiveWrapsAtPstop) {
  drv.linux_init(true);
  // Leave two pages before PSTOP: a 1000-byte frame needs four.
  wr(kCr, kPage1 | kNoDma | kStart);
  wr(kCurr, kRxStop - 2);
  wr(kCr, kPage0 | kNoDma | kStart);
  wr(kBnry, kRxStop - 3);
  const Bytes frame = make_frame(kMac, 1000, 8);
  peer.send(frame);
  const u8 expected_next = static_cast<u8>(kRxStart + 2);  // 0x7e, 0x7f, 0x46, 0x47
  EXPECT_EQ(nic.peek(static_cast<u16>((kRxStop - 2) << 8) + 1), expected_next);
  EXPECT_EQ(drv.curr(), expected_next);
  // The data continues at PSTART after PSTOP.
  EXPECT_EQ(nic.peek(kRxStart << 8), frame[512 - 4]);
  const auto frames = drv.drain_ring(2);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], frame);  // the remote DMA wrapped as well
}

TEST_F(Ne2000IsaTest, OverflowDropsAndKeepsRingIntact) {
  drv.linux_init(true);
  // 58 ring pages; 1514-byte frames take 6 each; BNRY stays at 0x7f.
  int stored = 0;
  for (int i = 0; i < 20 && !(rd(kIsr) & kOvw); ++i) {
    peer.send(make_frame(kMac, 1514, static_cast<u8>(i)));
    if (!(rd(kIsr) & kOvw)) ++stored;
  }
  EXPECT_EQ(stored, 9);  // 9 * 6 = 54 pages; a tenth would reach BNRY
  EXPECT_TRUE(rd(kIsr) & kOvw);
  EXPECT_TRUE(rd(kIsr) & kRst);
  EXPECT_EQ(nic.counters().rx_overflow, 1u);
  EXPECT_EQ(rd(kRsr) & 0x10, 0x10);  // MPA
  // The BNRY page and everything stored survive further frames.
  const auto before = ram_snapshot();
  const u8 curr_before = drv.curr();
  for (int i = 0; i < 5; ++i) peer.send(make_frame(kMac, 1514, static_cast<u8>(i)));
  EXPECT_EQ(ram_snapshot(), before);
  EXPECT_EQ(drv.curr(), curr_before);
  EXPECT_NE(curr_before, rd(kBnry));
  EXPECT_EQ(rd(kCntr2), 6);  // missed-packet tally, cleared by the read
  EXPECT_EQ(rd(kCntr2), 0);
  // lib8390's recovery: stop, drain, restart.
  wr(kCr, kNoDma | kStop);
  wr(kRbcr0, 0);
  wr(kRbcr1, 0);
  wr(kTcr, 0x02);
  wr(kCr, kNoDma | kStart);
  const auto frames = drv.drain_ring(4);
  ASSERT_EQ(frames.size(), 9u);
  EXPECT_EQ(frames[3], make_frame(kMac, 1514, 3));
  wr(kIsr, kOvw);
  wr(kTcr, 0x00);
  EXPECT_FALSE(rd(kIsr) & kRst);
  peer.send(make_frame(kMac, 60, 42));
  EXPECT_EQ(drv.drain_ring(2).size(), 1u);
}

TEST_F(Ne2000IsaTest, EmptyRingInDatasheetConvention) {
  // BNRY == CURR is an empty ring to drivers that keep BNRY on the next
  // packet; the chip never lets CURR catch up with it.
  drv.linux_init(true);
  wr(kBnry, kRxStart);
  for (int i = 0; i < 20; ++i) peer.send(make_frame(kMac, 1514, static_cast<u8>(i)));
  EXPECT_NE(drv.curr(), rd(kBnry));
  EXPECT_EQ(nic.counters().rx_frames, 9u);
}

TEST_F(Ne2000IsaTest, UnicastFilterUsesParNotProm) {
  drv.linux_init(true, kOtherMac);
  peer.send(make_frame(kMac, 60));  // the PROM's address: not ours any more
  EXPECT_EQ(nic.counters().rx_filtered, 1u);
  peer.send(make_frame(kOtherMac, 60));
  EXPECT_EQ(nic.counters().rx_frames, 1u);
  peer.send(make_frame(kPeerMac, 60));
  EXPECT_EQ(nic.counters().rx_filtered, 2u);
}

TEST_F(Ne2000IsaTest, BroadcastNeedsAb) {
  drv.linux_init(true);
  wr(kRcr, 0x00);
  peer.send(make_frame(kBroadcast, 60));
  EXPECT_EQ(nic.counters().rx_filtered, 1u);
  wr(kRcr, 0x04);
  peer.send(make_frame(kBroadcast, 60));
  EXPECT_EQ(nic.counters().rx_frames, 1u);
}

TEST(Ne2000Multicast, HashKnownAnswers) {
  // Top six bits of the Ethernet CRC-32 of the address, computed
  // independently with Python's zlib.crc32 (bit-reversed, uninverted).
  const struct {
    Mac addr;
    unsigned index;
  } cases[] = {{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}, 31},
               {{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}, 62},
               {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 63},
               {{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}, 15},
               {{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}, 25}};
  for (const auto& c : cases) EXPECT_EQ(Dp8390::multicast_index(c.addr), c.index);
}

TEST_F(Ne2000IsaTest, MulticastFilterUsesMarHash) {
  drv.linux_init(true);
  const Mac all_hosts{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};  // hash 31: MAR3 bit 7
  wr(kRcr, 0x0c);                                           // AB | AM
  peer.send(make_frame(all_hosts, 60));
  EXPECT_EQ(nic.counters().rx_filtered, 1u);  // MAR all zero
  drv.page(1);
  wr(kMar0 + 3, 0x7f);  // every bit but the right one
  drv.page(0);
  peer.send(make_frame(all_hosts, 60));
  EXPECT_EQ(nic.counters().rx_filtered, 2u);
  drv.page(1);
  wr(kMar0 + 3, 0x80);
  drv.page(0);
  peer.send(make_frame(all_hosts, 60));
  EXPECT_EQ(nic.counters().rx_frames, 1u);
  wr(kRcr, 0x04);  // AM off
  peer.send(make_frame(all_hosts, 60));
  EXPECT_EQ(nic.counters().rx_filtered, 3u);
}

TEST_F(Ne2000IsaTest, PromiscuousTakesEveryPhysicalAddress) {
  drv.linux_init(true);
  wr(kRcr, 0x10);  // PRO alone
  peer.send(make_frame(kPeerMac, 60));
  EXPECT_EQ(nic.counters().rx_frames, 1u);
  // Group addresses still need AB / AM, as the datasheet defines PRO.
  peer.send(make_frame(kBroadcast, 60));
  EXPECT_EQ(nic.counters().rx_filtered, 1u);
  // Linux's IFF_PROMISC: PRO | AM | AB with every MAR bit set.
  wr(kRcr, 0x1c);
  drv.page(1);
  for (int i = 0; i < 8; ++i) wr(static_cast<u8>(kMar0 + i), 0xff);
  drv.page(0);
  peer.send(make_frame(kBroadcast, 60));
  peer.send(make_frame(Mac{0x01, 0x02, 0x03, 0x04, 0x05, 0x06}, 60));
  EXPECT_EQ(nic.counters().rx_frames, 3u);
}

TEST_F(Ne2000IsaTest, IrqFollowsIsrAndImr) {
  drv.linux_init(true);
  wr(kImr, 0x00);
  peer.send(make_frame(kMac, 60));
  EXPECT_FALSE(irqs.levels[kIrq]);
  const int edges = irqs.edges[kIrq];
  wr(kImr, kPrx);
  EXPECT_TRUE(irqs.levels[kIrq]);
  EXPECT_EQ(irqs.edges[kIrq], edges + 1);
  // lib8390 masks everything in its handler and unmasks on the way out:
  // a cause still pending gives the edge-triggered PIC a fresh edge.
  wr(kImr, 0x00);
  EXPECT_FALSE(irqs.levels[kIrq]);
  wr(kImr, 0x3f);
  EXPECT_EQ(irqs.edges[kIrq], edges + 2);
  wr(kIsr, kPrx);
  EXPECT_FALSE(irqs.levels[kIrq]);
  // RST never interrupts.
  wr(kResetPort, 0);
  wr(kImr, 0x7f);
  EXPECT_FALSE(irqs.levels[kIrq]);
}

TEST_F(Ne2000IsaTest, IsrWriteOneToClear) {
  drv.linux_init(true);
  peer.send(make_frame(kMac, 60));
  drv.send(make_frame(kPeerMac, 60), 2);
  EXPECT_EQ(rd(kIsr) & (kPrx | kPtx), kPrx | kPtx);
  wr(kIsr, kPtx);
  EXPECT_EQ(rd(kIsr) & (kPrx | kPtx), kPrx);
  wr(kIsr, 0x00);
  EXPECT_EQ(rd(kIsr) & kPrx, kPrx);
  wr(kCr, kNoDma | kStop);
  wr(kIsr, 0xff);
  EXPECT_EQ(rd(kIsr), kRst);  // RST follows the state, not writes
}

TEST_F(Ne2000IsaTest, ResetPortReadOrWrite) {
  drv.linux_init(true);
  peer.send(make_frame(kMac, 60));
  EXPECT_TRUE(irqs.levels[kIrq]);
  (void)rd(kResetPort);
  EXPECT_EQ(rd(kCr), 0x21);
  EXPECT_EQ(rd(kIsr), kRst);
  EXPECT_FALSE(irqs.levels[kIrq]);
  drv.page(2);
  EXPECT_EQ(rd(kImr), 0x00);         // interrupts masked
  EXPECT_EQ(rd(kPstart), kRxStart);  // ring registers kept
  drv.page(0);
  wr(kCr, kNoDma | kStart);
  EXPECT_EQ(rd(kIsr), 0x00);
  wr(0x18, 0x00);  // any port of 0x18-0x1f
  EXPECT_EQ(rd(kIsr), kRst);
  // A reset stops the receiver.
  peer.send(make_frame(kMac, 60));
  EXPECT_EQ(nic.counters().rx_stopped, 1u);
}

TEST_F(Ne2000IsaTest, StartStopAndPageSwitchKeepState) {
  wr(kCr, kNoDma | kStart);
  EXPECT_EQ(rd(kCr), 0x22);
  EXPECT_FALSE(rd(kIsr) & kRst);
  drv.page(1);  // 0x40: neither STA nor STP
  EXPECT_EQ(rd(kCr), 0x42);
  drv.page(0);
  EXPECT_EQ(rd(kCr), 0x02);
  wr(kCr, kNoDma | kStop);
  EXPECT_EQ(rd(kCr), 0x21);
  EXPECT_TRUE(rd(kIsr) & kRst);
}

TEST_F(Ne2000IsaTest, TallyCountersClearOnReadAndSaturate) {
  drv.linux_init(true);
  wr(kRcr, 0x24);  // monitor mode: every accepted frame is missed
  wr(kIsr, 0xff);
  wr(kImr, kCnt);
  for (int i = 0; i < 127; ++i) peer.send(make_frame(kMac, 60));
  EXPECT_FALSE(rd(kIsr) & kCnt);
  peer.send(make_frame(kMac, 60));
  EXPECT_TRUE(rd(kIsr) & kCnt);  // MSB of CNTR2 set
  EXPECT_TRUE(irqs.levels[kIrq]);
  for (int i = 0; i < 100; ++i) peer.send(make_frame(kMac, 60));
  EXPECT_EQ(rd(kCntr2), 0xc0);  // stops at 192
  EXPECT_EQ(rd(kCntr2), 0);
  EXPECT_EQ(rd(kCntr0), 0);
  EXPECT_EQ(rd(0x0e), 0);
  EXPECT_EQ(rd(kRsr), 0x50);  // MPA | DIS
  EXPECT_EQ(nic.counters().rx_monitor, 228u);
  EXPECT_EQ(nic.counters().rx_frames, 0u);
}

TEST_F(Ne2000IsaTest, NoReceptionWhileStopped) {
  drv.linux_init(true);
  wr(kCr, kNoDma | kStop);
  peer.send(make_frame(kMac, 60));
  EXPECT_EQ(nic.counters().rx_stopped, 1u);
  EXPECT_EQ(nic.peek(kRxStart << 8), 0);
}

TEST_F(Ne2000IsaTest, InternalLoopback) {
  drv.linux_init(true);
  wr(kTcr, 0x02);
  peer.send(make_frame(kMac, 60));  // the wire is not listened to
  EXPECT_EQ(nic.counters().rx_stopped, 1u);
  const Bytes frame = make_frame(kMac, 80, 1);
  drv.send(frame, 2);
  EXPECT_TRUE(peer.frames.empty());
  EXPECT_TRUE(rd(kIsr) & kPtx);
  const auto frames = drv.drain_ring(2);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], frame);
}

TEST_F(Ne2000IsaTest, Page1Registers) {
  drv.page(1);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(rd(static_cast<u8>(kPar0 + i)), kMac[i]);  // loaded at power-up
  for (int i = 0; i < 8; ++i) wr(static_cast<u8>(kMar0 + i), static_cast<u8>(0x10 + i));
  wr(kCurr, 0x55);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(rd(static_cast<u8>(kMar0 + i)), 0x10 + i);
  EXPECT_EQ(rd(kCurr), 0x55);
}

TEST_F(Ne2000IsaTest, Page2ReadsBack) {
  wr(kPstart, 0x46);
  wr(kPstop, 0x80);
  wr(kTpsr, 0x40);
  wr(kRcr, 0x0c);
  wr(kTcr, 0x02);
  wr(kDcr, 0x49);
  wr(kImr, 0x3f);
  drv.page(2);
  EXPECT_EQ(rd(0x01), 0x46);
  EXPECT_EQ(rd(0x02), 0x80);
  EXPECT_EQ(rd(0x04), 0x40);
  EXPECT_EQ(rd(0x0c), 0xcc);  // unused bits read as ones on the RTL8029AS
  EXPECT_EQ(rd(0x0d), 0xe2);
  EXPECT_EQ(rd(0x0e), 0xc9);
  EXPECT_EQ(rd(0x0f), 0x3f);
}

TEST_F(Ne2000IsaTest, Page3Rtl8029Registers) {
  drv.page(3);
  EXPECT_EQ(rd(0x01), 0x00);  // 9346CR: normal mode
  EXPECT_EQ(rd(0x03), 0x00);  // CONFIG0
  EXPECT_EQ(rd(0x05), 0x40);  // CONFIG2: 10BaseT
  EXPECT_EQ(rd(0x06), 0x40);  // CONFIG3: full duplex
  EXPECT_EQ(rd(0x0e), 0x29);  // 8029ASID
  EXPECT_EQ(rd(0x0f), 0x80);
  wr(0x06, 0x00);  // not writable outside config-write mode
  EXPECT_EQ(rd(0x06), 0x40);
  // ne2k-pci's set_realtek_fdx().
  wr(0x01, 0xc0);
  EXPECT_EQ(rd(0x01), 0xc0);
  wr(0x06, 0x00);
  EXPECT_EQ(rd(0x06), 0x00);
  wr(0x06, 0x40);
  wr(0x01, 0x00);
  EXPECT_EQ(rd(0x06), 0x40);
  EXPECT_EQ(rd(kCr) >> 6, 3);  // CR is on every page
}

TEST_F(Ne2000IsaTest, SendPacketCommandIsCountedAndIgnored) {
  wr(kCr, 0x18 | kStart);
  EXPECT_EQ(nic.counters().unsupported_commands, 1u);
  EXPECT_EQ(drv.in(kDataPort, 1), 0xffu);
}

TEST_F(Ne2000IsaTest, RuntsAndOversizeFramesAreDropped) {
  drv.linux_init(true);
  peer.send(make_frame(kMac, 10));
  EXPECT_EQ(nic.counters().rx_runt, 1u);
  peer.send(make_frame(kMac, 1519));
  EXPECT_EQ(nic.counters().rx_oversize, 1u);
  peer.send(make_frame(kMac, 1518));  // one VLAN tag's worth
  EXPECT_EQ(nic.counters().rx_frames, 1u);
  const auto frames = drv.drain_ring(2);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].size(), 1518u);
}

// --- Guest register abuse that broke QEMU's NE2000 ---------------------------

TEST_F(Ne2000IsaTest, Cve2015_5279RingPointersBeyondMemory) {
  const struct {
    u8 pstart, pstop, curr, bnry;
  } cases[] = {
      {0x46, 0x80, 0xc0, 0x45},  // CURR at the end of memory
      {0x46, 0x80, 0xff, 0x7f},  // CURR far beyond
      {0x46, 0xff, 0xc0, 0x46},  // PSTOP beyond memory
      {0xc0, 0xff, 0xc1, 0xc0},  // the whole ring beyond memory
      {0x00, 0x80, 0x00, 0x7f},  // ring over the PROM and the hole
  };
  for (const auto& c : cases) {
    drv.linux_init(true);
    wr(kPstart, c.pstart);
    wr(kPstop, c.pstop);
    wr(kBnry, c.bnry);
    drv.page(1);
    wr(kCurr, c.curr);
    drv.page(0);
    const auto before = ram_snapshot();
    const u64 bad = nic.counters().rx_bad_ring;
    peer.send(make_frame(kMac, 1514));
    peer.send(make_frame(kBroadcast, 60));
    EXPECT_EQ(nic.counters().rx_bad_ring, bad + 2);
    EXPECT_EQ(ram_snapshot(), before);
    EXPECT_EQ(rd(kRsr) & 0x10, 0x10);  // MPA
    EXPECT_EQ(rd(kCntr2), 2);
  }
}

// The chip stops storing only on reaching the page BNRY names, so a BNRY
// outside the ring never stops it. Linux's driver relies on one case of
// this: it keeps BNRY one page behind the next frame to read and writes
// PSTART-1 when that frame starts at PSTART, which must act as PSTOP-1.
TEST_F(Ne2000IsaTest, BnryOutsideTheRing) {
  drv.linux_init(true);
  drv.page(1);
  wr(kCurr, kRxStart);
  drv.page(0);
  wr(kBnry, kRxStart - 1);
  peer.send(make_frame(kMac, 1514));
  EXPECT_EQ(nic.counters().rx_frames, 1u);
  EXPECT_EQ(drv.curr(), kRxStart + 6);
  // Filling the ring stops one page short of PSTART-1's wrapped meaning,
  // PSTOP-1, and reports the overflow.
  const unsigned ring = kRxStop - kRxStart;
  for (unsigned i = 0; i < ring / 6 + 1; ++i) peer.send(make_frame(kMac, 1514));
  EXPECT_EQ(nic.counters().rx_frames, (ring - 1) / 6);
  EXPECT_GE(nic.counters().rx_overflow, 1u);
  EXPECT_EQ(nic.counters().rx_bad_ring, 0u);

  // BNRY beyond card memory: nothing stops the chip but the ring's size.
  drv.linux_init(true);
  wr(kBnry, 0xc5);
  const u64 before = nic.counters().rx_frames;
  peer.send(make_frame(kMac, 1514));
  EXPECT_EQ(nic.counters().rx_frames, before + 1);
  EXPECT_EQ(nic.counters().rx_bad_ring, 0u);
}

TEST_F(Ne2000IsaTest, Cve2015_5278CurrBeyondPstop) {
  drv.linux_init(true);
  drv.page(1);
  wr(kCurr, kRxStop + 1);  // QEMU looped forever here
  drv.page(0);
  peer.send(make_frame(kMac, 1514));
  EXPECT_EQ(nic.counters().rx_bad_ring, 1u);
  EXPECT_EQ(drv.curr(), kRxStop + 1);
}

TEST_F(Ne2000IsaTest, Cve2016_2841PstartNotBelowPstop) {
  for (u8 pstop : {u8{0x46}, u8{0x40}}) {
    drv.linux_init(true);
    wr(kPstart, 0x46);
    wr(kPstop, pstop);
    const auto before = ram_snapshot();
    peer.send(make_frame(kMac, 200));
    EXPECT_EQ(ram_snapshot(), before);
  }
  EXPECT_EQ(nic.counters().rx_bad_ring, 2u);
  // The remote DMA over such a ring still ends: no address stays stuck.
  wr(kDcr, 0x49);
  const Bytes got = drv.dma_read(0x4500, 0x400, 4);
  EXPECT_EQ(got.size(), 0x400u);
}

TEST_F(Ne2000IsaTest, Cve2015_8743DwordAccessAtEndOfMemory) {
  wr(kDcr, 0x49);
  for (u16 rsar : {u16{0xbffe}, u16{0xbffc}, u16{0xbfff}, u16{0xffff}, u16{0x001e}, u16{0x3ffe}}) {
    drv.start_dma(kRwrite, rsar, 8);
    drv.out(kDataPort, 4, 0xdeadbeef);
    drv.out(kDataPort, 4, 0xcafef00d);
    drv.start_dma(kRread, rsar, 8);
    (void)drv.in(kDataPort, 4);
    (void)drv.in(kDataPort, 4);
  }
  // Bytes inside RAM were written; the rest read 0xff and were counted.
  EXPECT_EQ(nic.peek(0xbffe), 0xef);
  EXPECT_EQ(nic.peek(0xbfff), 0xbe);
  drv.start_dma(kRread, 0xbffe, 4);
  EXPECT_EQ(drv.in(kDataPort, 4), 0xffffbeefu);
  EXPECT_GT(nic.counters().dma_out_of_range, 0u);
}

TEST_F(Ne2000IsaTest, RandomRegisterAbuseNeverEscapes) {
  // A deterministic scramble of every port and width, with frames mixed in.
  u32 x = 12345;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
  };
  for (int i = 0; i < 20000; ++i) {
    const u32 r = next();
    const u8 port = static_cast<u8>(r % 0x20);
    const unsigned width = 1u << ((r >> 8) % 3);
    if ((r >> 12) % 5 == 0) {
      peer.send(make_frame((r >> 16) & 1 ? kMac : kBroadcast, 14 + (r >> 17) % 1600));
    } else if ((r >> 12) % 2) {
      drv.out(port, width, next());
    } else {
      (void)drv.in(port, width);
    }
  }
  SUCCEED();
}

// --- Mapping, wiring and state ----------------------------------------------

TEST(Ne2000IsaMapping, CustomIobaseAndIrq) {
  PortBus ports;
  FakeIrqSink irqs;
  Ne2000Isa nic("ne2000.1", kOtherMac, 0x320, IrqLine{&irqs, 10});
  nic.map_into(ports);
  EXPECT_EQ(nic.iobase(), 0x320);
  EXPECT_EQ(ports.read(0x300, 1), 0xffu);  // nothing at the default
  EXPECT_EQ(ports.read(0x320, 1), 0x21u);
  EXPECT_EQ(ports.read(0x33f, 1), 0x00u);  // the reset port
  EXPECT_EQ(ports.read(0x340, 1), 0xffu);  // one past the window
  const auto map = ports.describe();
  ASSERT_EQ(map.size(), 1u);
  EXPECT_NE(map[0].find("0x0320-0x033f ne2000.1"), std::string::npos) << map[0];
  Driver drv(ports, 0x320);
  drv.linux_init(true, kOtherMac);
  Hub hub(0);
  TestPort peer;
  hub.attach(nic, "ne2k_isa.1");
  hub.attach(peer, "peer");
  peer.send(make_frame(kOtherMac, 60));
  EXPECT_TRUE(irqs.levels[10]);
  EXPECT_FALSE(irqs.levels[9]);
  EXPECT_EQ(nic.describe_port(), "model=ne2k_isa,macaddr=52:54:00:ab:cd:ef");
}

TEST_F(Ne2000IsaTest, SerializeRoundTrip) {
  drv.linux_init(true);
  for (int i = 0; i < 3; ++i) peer.send(make_frame(kMac, 300 + i * 100, static_cast<u8>(i)));
  drv.send(make_frame(kPeerMac, 60), 2);
  drv.page(1);
  wr(kMar0 + 2, 0x5a);
  drv.page(0);
  drv.start_dma(kRread, 0x4600, 100);  // a remote DMA in flight
  (void)drv.in(kDataPort, 2);
  (void)rd(kResetPort + 0);  // and one reset, for ISR.RST
  wr(kCr, kNoDma | kStart);
  drv.start_dma(kRread, 0x4600, 100);
  (void)drv.in(kDataPort, 2);

  const std::string saved = save_binary(nic);
  const std::string json = dump_json(nic);
  PortBus ports2;
  FakeIrqSink irqs2;
  Ne2000Isa copy("ne2000.0", kMac, kBase, IrqLine{&irqs2, kIrq});
  copy.map_into(ports2);
  EXPECT_NE(state_hash(copy), state_hash(nic));
  load_binary(copy, saved);
  EXPECT_EQ(state_hash(copy), state_hash(nic));
  EXPECT_EQ(dump_json(copy), json);
  // The copy carries on exactly where the original was.
  Driver drv2(ports2, kBase);
  EXPECT_EQ(drv2.in(kDataPort, 2), drv.in(kDataPort, 2));
  EXPECT_EQ(state_hash(copy), state_hash(nic));
  // Field names a diff would show.
  for (const char* field : {"\"isr\"", "\"curr\"", "\"crda\"", "\"counters\"", "\"rx_overflow\"",
                            "\"dma_out_of_range\"", "\"page_46\"", "\"prom\"", "\"mar\""}) {
    EXPECT_NE(json.find(field), std::string::npos) << field;
  }
}

TEST_F(Ne2000IsaTest, PowerOnResetClearsEverything) {
  drv.linux_init(true);
  peer.send(make_frame(kMac, 60));
  EXPECT_TRUE(irqs.levels[kIrq]);
  nic.reset();
  EXPECT_FALSE(irqs.levels[kIrq]);
  EXPECT_EQ(rd(kCr), 0x21);
  EXPECT_EQ(nic.peek(kRxStart << 8), 0);
  Ne2000Isa fresh("ne2000.0", kMac, kBase, IrqLine{});
  // Counters survive (they describe the session), the rest is as new.
  EXPECT_EQ(nic.counters().rx_frames, 1u);
  EXPECT_EQ(nic.cr(), fresh.cr());
  EXPECT_EQ(nic.isr(), fresh.isr());
}

// ---------------------------------------------------------------------------
// PCI card in slot 3 behind the i440FX/PIIX3, as a -M pc board wires it.

class Ne2000PciTest : public ::testing::Test {
 protected:
  static constexpr unsigned kSlot = 3;

  Ne2000PciTest() {
    bus.map_into(ports);
    bus.attach(&host);
    bus.attach(&isa);
    bus.attach(&nic);
    hub.attach(nic, "ne2k_pci.0");
    hub.attach(peer, "peer");
  }
  u32 cfg_read(u8 reg, unsigned size = 4) {
    ports.write(0xcf8, 4, 0x80000000u | kSlot << 11 | (reg & 0xfc));
    return ports.read(static_cast<u16>(0xcfc + (reg & 3)), size);
  }
  void cfg_write(u8 reg, unsigned size, u32 value) {
    ports.write(0xcf8, 4, 0x80000000u | kSlot << 11 | (reg & 0xfc));
    ports.write(static_cast<u16>(0xcfc + (reg & 3)), size, value);
  }
  unsigned irq() const { return static_cast<unsigned>(isa.isa_irq_for(kSlot, 1)); }

  PortBus ports;
  PciBus bus;
  I440fxHostBridge host;
  Piix3IsaBridge isa;
  FakeIrqSink irqs;
  Ne2000Pci nic{"ne2000.0", kSlot, kMac, ports, IrqLine{&irqs, static_cast<unsigned>(isa.isa_irq_for(3, 1))}};
  Hub hub{0};
  TestPort peer;
};

TEST_F(Ne2000PciTest, ConfigSpaceIdentity) {
  EXPECT_EQ(cfg_read(0x00), 0x802910ecu);  // RTL8029
  EXPECT_EQ(cfg_read(0x08), 0x02000000u);  // Ethernet controller, revision 0
  EXPECT_EQ(cfg_read(0x0e, 1), 0x00u);     // header type 0
  EXPECT_EQ(cfg_read(0x2c), 0x11001af4u);  // QEMU's subsystem IDs
  EXPECT_EQ(cfg_read(0x3d, 1), 0x01u);     // INTA#
  EXPECT_EQ(cfg_read(0x10), 0x00000001u);  // BAR0: I/O, unassigned
  for (u8 bar = 0x14; bar < 0x28; bar += 4) EXPECT_EQ(cfg_read(bar), 0u);
  EXPECT_EQ(nic.describe_port(), "model=ne2k_pci,macaddr=52:54:00:12:34:56");
}

TEST_F(Ne2000PciTest, BarSizingAndFirmwareSetup) {
  cfg_write(0x10, 4, 0xffffffffu);
  EXPECT_EQ(cfg_read(0x10), 0xffffff01u);  // 256 bytes of I/O
  const u16 level = assign_pci_resources(bus, isa);
  EXPECT_TRUE(level & (1u << irq()));
  EXPECT_EQ(cfg_read(0x10), 0xc001u);
  EXPECT_EQ(cfg_read(0x3c, 1), irq());
  EXPECT_EQ(irq(), 11u);
  EXPECT_EQ(ports.read(0xc000, 1), 0x21u);  // CR through the BAR
  EXPECT_EQ(ports.read(0xc00a, 1), 0x50u);
  EXPECT_EQ(ports.read(0xc020, 1), 0xffu);  // the BAR's upper part decodes nothing
  EXPECT_EQ(ports.read(0xc0ff, 4), 0xffffffffu);
}

TEST_F(Ne2000PciTest, LinuxNe2kPciProbeAndTraffic) {
  assign_pci_resources(bus, isa);
  Driver drv(ports, 0xc000);
  // ne2k_pci_init_one(): 8390 check, reset, then the PROM in word mode
  // read with inb().
  ASSERT_NE(drv.rd(kCr), 0xff);
  drv.wr(kCr, kNoDma | kPage1 | kStop);
  (void)drv.rd(0x0d);
  drv.wr(0x0d, 0xff);
  drv.wr(kCr, kNoDma | kPage0);
  (void)drv.rd(kCntr0);
  ASSERT_EQ(drv.rd(kCntr0), 0);
  drv.wr(kResetPort, drv.rd(kResetPort));
  ASSERT_TRUE(drv.rd(kIsr) & kRst);
  drv.wr(kIsr, 0xff);
  const u8 seq[][2] = {{kNoDma | kPage0 | kStop, kCr},
                       {0x49, kDcr},
                       {0x00, kRbcr0},
                       {0x00, kRbcr1},
                       {0x00, kImr},
                       {0xff, kIsr},
                       {0x20, kRcr},
                       {0x02, kTcr},
                       {32, kRbcr0},
                       {0, kRbcr1},
                       {0, kRsar0},
                       {0, kRsar1},
                       {kRread | kStart, kCr}};
  for (const auto& s : seq) drv.wr(s[1], s[0]);
  u8 sa[32];
  for (int i = 0; i < 32; ++i) sa[i] = static_cast<u8>(drv.in(kDataPort, 1));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(sa[i], kMac[i]);
  // set_realtek_fdx(), then the ring, then traffic with 32-bit I/O.
  drv.wr(kCr, 0xc0 | kNoDma);
  drv.wr(0x01, 0xc0);
  drv.wr(0x06, 0x40);
  drv.wr(0x01, 0x00);
  drv.wr(kCr, kPage0 | kNoDma);
  drv.linux_init(true);
  const Bytes out = make_frame(kPeerMac, 1514, 7);
  drv.send(out, 4);
  ASSERT_EQ(peer.frames.size(), 1u);
  EXPECT_EQ(peer.frames[0], out);
  EXPECT_TRUE(irqs.levels[irq()]);
  drv.wr(kIsr, 0xff);
  EXPECT_FALSE(irqs.levels[irq()]);
  const Bytes in = make_frame(kMac, 333, 9);
  peer.send(in);
  EXPECT_TRUE(irqs.levels[irq()]);
  const auto frames = drv.drain_ring(4);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], in);
}

TEST_F(Ne2000PciTest, IntxDisableAndInterruptStatus) {
  assign_pci_resources(bus, isa);
  Driver drv(ports, 0xc000);
  drv.linux_init(true);
  EXPECT_EQ(cfg_read(0x06, 2) & 0x08, 0u);
  peer.send(make_frame(kMac, 60));
  EXPECT_TRUE(irqs.levels[irq()]);
  EXPECT_EQ(cfg_read(0x06, 2) & 0x08, 0x08u);  // status: interrupt pending
  EXPECT_EQ(cfg_read(0x04) & 0x00080000u, 0x00080000u);
  cfg_write(0x04, 2, cfg_read(0x04, 2) | 0x0400);  // INTx disable
  EXPECT_FALSE(irqs.levels[irq()]);
  EXPECT_EQ(cfg_read(0x06, 2) & 0x08, 0x08u);  // still pending
  cfg_write(0x04, 2, cfg_read(0x04, 2) & ~0x0400u);
  EXPECT_TRUE(irqs.levels[irq()]);
  drv.wr(kIsr, kPrx);
  EXPECT_FALSE(irqs.levels[irq()]);
  EXPECT_EQ(cfg_read(0x06, 2) & 0x08, 0u);
}

TEST_F(Ne2000PciTest, DecodesOnlyWithIoEnabled) {
  assign_pci_resources(bus, isa);
  cfg_write(0x04, 2, 0x0000);
  EXPECT_EQ(ports.read(0xc000, 1), 0xffu);
  cfg_write(0x04, 2, 0x0001);
  EXPECT_EQ(ports.read(0xc000, 1), 0x21u);
}

TEST_F(Ne2000PciTest, StateRoundTripWithBus) {
  assign_pci_resources(bus, isa);
  Driver drv(ports, 0xc000);
  drv.linux_init(true);
  peer.send(make_frame(kMac, 500));
  const std::string saved = save_binary(nic);
  const u64 hash = state_hash(nic);
  drv.linux_init(false);
  EXPECT_NE(state_hash(nic), hash);
  load_binary(nic, saved);
  EXPECT_EQ(state_hash(nic), hash);
  // The pin level is part of the state; the PIC restores its own side.
  EXPECT_TRUE(nic.irq_level());
  EXPECT_EQ(drv.drain_ring(4).size(), 1u);
}

}  // namespace
}  // namespace reel
