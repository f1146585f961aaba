#include "devices/pci_firmware_setup.h"

#include "devices/pci_bus.h"
#include "devices/pci_device.h"
#include "devices/piix3_isa_bridge.h"

namespace reel {

void assign_pci_resources(PciBus& bus, const Piix3IsaBridge& router) {
  u32 next_io = 0xc000;
  u32 next_mem_top = 0xfec00000;
  for (PciDevice* d : bus.devices()) {
    bool any_io = false, any_mem = false;
    for (unsigned i = 0; i < 6; ++i) {
      const u32 size = d->bar_size(i);
      if (size == 0) continue;
      if (d->bar_is_io(i)) {
        next_io = (next_io + size - 1) & ~(size - 1);
        d->config_write(static_cast<u8>(0x10 + 4 * i), 4, next_io | 1);
        next_io += size;
        any_io = true;
      } else {
        next_mem_top = (next_mem_top - size) & ~(size - 1);
        d->config_write(static_cast<u8>(0x10 + 4 * i), 4, next_mem_top);
        any_mem = true;
      }
    }
    if (d->interrupt_pin()) {
      const int irq = router.isa_irq_for(d->slot(), d->interrupt_pin());
      d->config_write(0x3c, 1, irq < 0 ? 0xff : static_cast<u32>(irq));
    }
    if (any_io || any_mem) {
      d->config_write(0x04, 2, d->command() | (any_io ? 1 : 0) | (any_mem ? 2 : 0) | 4);
    }
  }
}

}  // namespace reel
