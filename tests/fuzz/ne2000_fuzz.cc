// Random port I/O (8/16/32-bit), PCI configuration writes, injected frames
// and state round trips against both NE2000 front-ends on one hub: guest
// register abuse must never crash, hang, read or write out of bounds, and
// the interrupt pins must always show ISR & IMR.
//
// Input: a sequence of operations, each an opcode byte
//   bits 0-2 kind, bit 3 card (0 ISA at 0x300, 1 PCI behind BAR 0),
//   bits 4-5 width (1, 2, 4, 4) or frame destination,
// followed by the operands its kind takes (see the switch below).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "core/interrupts.h"
#include "core/port_bus.h"
#include "devices/i440fx_host_bridge.h"
#include "devices/ne2000_isa.h"
#include "devices/ne2000_pci.h"
#include "devices/pci_bus.h"
#include "devices/pci_firmware_setup.h"
#include "devices/piix3_isa_bridge.h"
#include "netstack/hub.h"

namespace {

using reel::u8;

class LevelSink : public reel::IrqSink {
 public:
  void set_irq(unsigned line, bool level) override {
    if (line < 16) levels[line] = level;
  }
  bool levels[16] = {};
};

class Wire : public reel::FramePort {
 public:
  void receive_frame(std::span<const u8> frame) override { received += frame.size(); }
  std::string describe_port() const override { return "model=fuzz"; }
  void send(std::span<const u8> frame) { transmit(frame); }
  size_t received = 0;
};

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::string save(reel::Device& d) {
  std::ostringstream os;
  {
    reel::BinaryOut ar(os);
    d.save_state(ar);
  }
  return os.str();
}

void round_trip(reel::Device& d) {
  const std::string before = save(d);
  {
    std::istringstream is(before);
    reel::BinaryIn ar(is);
    d.load_state(ar);
  }
  check(save(d) == before);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  reel::PortBus ports;
  LevelSink pic;
  reel::PciBus bus;
  bus.map_into(ports);
  reel::I440fxHostBridge host_bridge;
  reel::Piix3IsaBridge isa_bridge;
  const unsigned pci_irq = static_cast<unsigned>(isa_bridge.isa_irq_for(3, 1));
  reel::Ne2000Pci pci("ne2000.0", 3, reel::Dp8390::kDefaultMac, ports, reel::IrqLine{&pic, pci_irq});
  bus.attach(&host_bridge);
  bus.attach(&isa_bridge);
  bus.attach(&pci);
  reel::assign_pci_resources(bus, isa_bridge);
  const reel::Dp8390::MacAddress isa_mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x57};
  reel::Ne2000Isa isa("ne2000.1", isa_mac, reel::Ne2000Isa::kDefaultIobase,
                      reel::IrqLine{&pic, reel::Ne2000Isa::kDefaultIrq});
  isa.map_into(ports);
  reel::Hub hub(0);
  Wire wire;
  hub.attach(pci, "ne2k_pci.0");
  hub.attach(isa, "ne2k_isa.0");
  hub.attach(wire, "wire");

  std::vector<u8> frame;
  size_t i = 0;
  auto take = [&](size_t n, uint32_t& out) {
    out = 0;
    if (i + n > size) return false;
    for (size_t k = 0; k < n; ++k) out |= uint32_t{data[i + k]} << (8 * k);
    i += n;
    return true;
  };
  while (i < size) {
    const u8 op = data[i++];
    const bool on_pci = op & 0x08;
    const unsigned width = std::min(1u << ((op >> 4) & 3), 4u);
    reel::Dp8390& nic = on_pci ? static_cast<reel::Dp8390&>(pci) : isa;
    const uint32_t pci_base = pci.decoded_base(0) ? pci.decoded_base(0) : 0xc000;
    const uint32_t base = on_pci ? pci_base : reel::Ne2000Isa::kDefaultIobase;
    const uint32_t span = on_pci ? 0x100 : 0x40;  // the ISA side also pokes past its window
    uint32_t a = 0, v = 0;
    switch (op & 7) {
      case 0:  // write: offset, value
        if (!take(1, a) || !take(width, v)) return 0;
        ports.write(static_cast<uint16_t>(base + a % span), width, v);
        break;
      case 1:  // read: offset
        if (!take(1, a)) return 0;
        (void)ports.read(static_cast<uint16_t>(base + a % span), width);
        break;
      case 2: {  // frame from the wire: length (2 bytes); destination from op bits 4-5
        if (!take(2, a)) return 0;
        frame.assign(a % 2048, 0);
        for (size_t k = 0; k < frame.size(); ++k) frame[k] = static_cast<u8>(a + k * 13);
        const reel::Dp8390::MacAddress dsts[4] = {reel::Dp8390::kDefaultMac,
                                                  isa_mac,
                                                  {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
                                                  {0x01, 0, 0x5e, 0, 0, 1}};
        const auto& dst = dsts[(op >> 4) & 3];
        for (size_t k = 0; k < 6 && k < frame.size(); ++k) frame[k] = dst[k];
        wire.send(frame);
        break;
      }
      case 3:  // PCI configuration write: register, value (BAR moves, INTx disable, ...)
        if (!take(1, a) || !take(width, v)) return 0;
        ports.write(0xcf8, 4, 0x80000000u | 3u << 11 | (a & 0xfc));
        ports.write(static_cast<uint16_t>(0xcfc + (a & 3)), width, v);
        break;
      case 4:  // save and load the card's state
        round_trip(nic);
        break;
      case 5:  // power-on reset of the card
        nic.reset();
        break;
      case 6:  // a burst of data-port reads: count
        if (!take(1, a)) return 0;
        for (uint32_t k = 0; k < a * 8; ++k) (void)ports.read(static_cast<uint16_t>(base + 0x10), width);
        break;
      case 7:  // a burst of data-port writes: count, value
        if (!take(1, a) || !take(width, v)) return 0;
        for (uint32_t k = 0; k < a * 8; ++k) ports.write(static_cast<uint16_t>(base + 0x10), width, v + k);
        break;
    }
    // The pins always show the cards' interrupt state.
    check(pic.levels[reel::Ne2000Isa::kDefaultIrq] == isa.interrupt_pending());
    check(isa.irq_level() == isa.interrupt_pending());
    const bool intx_on = !(pci.command() & 0x0400);
    check(pic.levels[pci_irq] == (pci.interrupt_pending() && intx_on));
  }
  (void)save(pci);
  (void)save(isa);
  return 0;
}
