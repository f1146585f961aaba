// Frames per second through an NE2000 and a hub, with the guest's side done
// as a driver does it over the port bus (every data-port access is one
// PortBus call, as a guest's ins/outs would cost the CPU interpreter):
//   Transmit: remote-DMA write of the frame, TPSR/TBCR, CR.TXP, ISR ack;
//             the hub hands it to a sink port.
//   Receive:  a source port sends through the hub into the ring; the guest
//             reads the 4-byte header and the frame by remote DMA, moves
//             BNRY and acks ISR, as lib8390's ei_receive() does.
// Arguments: frame length, data-port access width (2 = ne.c's insw/outsw,
// 4 = ne2k-pci's insl/outsl on an RTL8029). items/s is frames per second.

#include <benchmark/benchmark.h>

#include <vector>

#include "core/port_bus.h"
#include "devices/ne2000_isa.h"
#include "netstack/hub.h"

namespace reel {
namespace {

constexpr u16 kBase = Ne2000Isa::kDefaultIobase;
constexpr u8 kTxStart = 0x40, kRxStart = 0x46, kRxStop = 0x80;

class CountingPort : public FramePort {
 public:
  void receive_frame(std::span<const u8> frame) override {
    ++frames;
    bytes += frame.size();
  }
  std::string describe_port() const override { return "model=bench"; }
  void send(std::span<const u8> frame) { transmit(frame); }
  u64 frames = 0;
  u64 bytes = 0;
};

class NoIrq : public IrqSink {
 public:
  void set_irq(unsigned, bool) override {}
};

struct Rig {
  Rig() {
    nic.map_into(ports);
    hub.attach(nic, "ne2k_isa.0");
    hub.attach(peer, "peer");
    // lib8390's NS8390_init() and start, word mode, IMR = ENISR_ALL.
    const u8 init[][2] = {{0x00, 0x21},        {0x0e, 0x49},    {0x0a, 0},        {0x0b, 0},
                          {0x0c, 0x20},        {0x0d, 0x02},    {0x04, kTxStart}, {0x01, kRxStart},
                          {0x03, kRxStop - 1}, {0x02, kRxStop}, {0x07, 0xff},     {0x0f, 0x00},
                          {0x00, 0x61}};
    for (const auto& w : init) wr(w[0], w[1]);
    for (int i = 0; i < 6; ++i) wr(static_cast<u8>(1 + i), Dp8390::kDefaultMac[i]);
    wr(0x07, kRxStart);
    const u8 start[][2] = {{0x00, 0x21}, {0x07, 0xff}, {0x0f, 0x3f},
                           {0x00, 0x22}, {0x0d, 0x00}, {0x0c, 0x04}};
    for (const auto& w : start) wr(w[0], w[1]);
  }
  void wr(u8 reg, u8 v) { ports.write(static_cast<u16>(kBase + reg), 1, v); }
  u8 rd(u8 reg) { return static_cast<u8>(ports.read(static_cast<u16>(kBase + reg), 1)); }
  void start_dma(u8 cmd, u16 addr, u16 count) {
    wr(0x0a, static_cast<u8>(count));
    wr(0x0b, static_cast<u8>(count >> 8));
    wr(0x08, static_cast<u8>(addr));
    wr(0x09, static_cast<u8>(addr >> 8));
    wr(0x00, cmd | 0x02);
  }

  PortBus ports;
  NoIrq irqs;
  Ne2000Isa nic{"ne2000.0", Dp8390::kDefaultMac, kBase, IrqLine{&irqs, 9}};
  Hub hub{0};
  CountingPort peer;
};

std::vector<u8> make_frame(size_t len) {
  std::vector<u8> f(len);
  for (size_t i = 0; i < len; ++i) f[i] = static_cast<u8>(i * 7);
  for (int i = 0; i < 6; ++i) f[i] = Dp8390::kDefaultMac[i];
  return f;
}

void BM_GuestTransmit(benchmark::State& state) {
  const size_t len = static_cast<size_t>(state.range(0));
  const unsigned width = static_cast<unsigned>(state.range(1));
  Rig rig;
  const std::vector<u8> frame = make_frame(len);
  const u16 count = static_cast<u16>((len + width - 1) / width * width);
  for (auto _ : state) {
    rig.start_dma(0x10, kTxStart << 8, count);
    for (size_t i = 0; i < count; i += width) {
      u32 v = 0;
      for (unsigned b = 0; b < width; ++b) v |= u32{i + b < len ? frame[i + b] : u8{0}} << (8 * b);
      rig.ports.write(kBase + 0x10, width, v);
    }
    rig.wr(0x07, 0x40);  // RDC
    rig.wr(0x04, kTxStart);
    rig.wr(0x05, static_cast<u8>(len));
    rig.wr(0x06, static_cast<u8>(len >> 8));
    rig.wr(0x00, 0x26);
    rig.wr(0x07, rig.rd(0x07));
  }
  if (rig.peer.frames != static_cast<u64>(state.iterations())) state.SkipWithError("frames lost");
  state.SetItemsProcessed(static_cast<int64_t>(rig.peer.frames));
  state.SetBytesProcessed(static_cast<int64_t>(rig.peer.bytes));
}

void BM_GuestReceive(benchmark::State& state) {
  const size_t len = static_cast<size_t>(state.range(0));
  const unsigned width = static_cast<unsigned>(state.range(1));
  Rig rig;
  const std::vector<u8> frame = make_frame(len);
  u64 frames = 0, bytes = 0;
  u32 sink = 0;
  for (auto _ : state) {
    rig.peer.send(frame);
    // ei_receive(): the frame after BNRY, up to CURR.
    rig.wr(0x00, 0x62);
    const u8 curr = rig.rd(0x07);
    rig.wr(0x00, 0x22);
    u8 this_frame = static_cast<u8>(rig.rd(0x03) + 1);
    if (this_frame >= kRxStop) this_frame = kRxStart;
    if (this_frame == curr) {
      state.SkipWithError("frame not stored");
      break;
    }
    rig.start_dma(0x08, static_cast<u16>(this_frame << 8), 4);
    const u32 hdr = width == 4 ? rig.ports.read(kBase + 0x10, 4)
                               : rig.ports.read(kBase + 0x10, 2) | rig.ports.read(kBase + 0x10, 2) << 16;
    const u8 next = static_cast<u8>(hdr >> 8);
    const u16 pkt_len = static_cast<u16>((hdr >> 16) - 4);
    rig.wr(0x07, 0x40);
    rig.start_dma(0x08, static_cast<u16>((this_frame << 8) + 4), pkt_len);
    for (u32 i = 0; i < pkt_len; i += width) sink ^= rig.ports.read(kBase + 0x10, width);
    rig.wr(0x07, 0x40);
    rig.wr(0x03, next == kRxStart ? kRxStop - 1 : static_cast<u8>(next - 1));
    rig.wr(0x07, rig.rd(0x07));
    ++frames;
    bytes += pkt_len;
  }
  benchmark::DoNotOptimize(sink);
  if (rig.nic.counters().rx_frames != frames) state.SkipWithError("frames dropped");
  state.SetItemsProcessed(static_cast<int64_t>(frames));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

BENCHMARK(BM_GuestTransmit)->ArgNames({"len", "width"})->Args({60, 2})->Args({1514, 2})->Args({1514, 4});
BENCHMARK(BM_GuestReceive)->ArgNames({"len", "width"})->Args({60, 2})->Args({1514, 2})->Args({1514, 4});

}  // namespace
}  // namespace reel
