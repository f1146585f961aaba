#include "devices/pci_firmware_setup.h"

#include "devices/pci_bus.h"
#include "devices/pci_device.h"
#include "devices/piix3_isa_bridge.h"

namespace reel {

namespace {
constexpr u32 kIoStart = 0xc000;
constexpr u32 kIoEnd = 0x10000;
constexpr u32 kMemTop = 0xfec00000;  // the IOAPIC sits here
constexpr u32 kMemBottom = 0xe0000000;

u16 assign(PciBus& bus, const Piix3IsaBridge* router) {
  u32 next_io = kIoStart;
  u32 next_mem_top = kMemTop;
  // Functions in slot order, BARs in index order: the same layout on every
  // run whatever order the board attached them in.
  for (PciDevice* d : bus.devices()) {
    bool any_io = false, any_mem = false;
    for (unsigned i = 0; i < 6; ++i) {
      const u32 size = d->bar_size(i);
      if (size == 0) continue;
      if (d->bar_is_io(i)) {
        const u32 base = (next_io + size - 1) & ~(size - 1);
        if (base + size > kIoEnd) continue;  // out of I/O space: leave it unassigned
        d->config_write(static_cast<u8>(0x10 + 4 * i), 4, base | 1);
        next_io = base + size;
        any_io = true;
      } else {
        if (size > next_mem_top - kMemBottom) continue;
        const u32 base = (next_mem_top - size) & ~(size - 1);
        if (base < kMemBottom) continue;
        d->config_write(static_cast<u8>(0x10 + 4 * i), 4, base);
        next_mem_top = base;
        any_mem = true;
      }
    }
    if (router && d->interrupt_pin()) {
      const int irq = router->isa_irq_for(d->slot(), d->interrupt_pin());
      d->config_write(0x3c, 1, irq < 0 ? 0xff : static_cast<u32>(irq));
    }
    if (any_io || any_mem) {
      d->config_write(0x04, 2, d->command() | (any_io ? 1u : 0u) | (any_mem ? 2u : 0u) | 4u);
    }
  }
  return router ? router->routed_irq_mask() : 0;
}
}  // namespace

u16 assign_pci_resources(PciBus& bus, const Piix3IsaBridge& router) { return assign(bus, &router); }

u16 assign_pci_resources(PciBus& bus) {
  return assign(bus, dynamic_cast<const Piix3IsaBridge*>(bus.find(1, 0)));
}

}  // namespace reel
