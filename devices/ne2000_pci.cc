#include "devices/ne2000_pci.h"

#include <utility>

namespace reel {

namespace {
// What QEMU's ne2k_pci shows: the RTL8029's IDs, revision 0, QEMU's
// default subsystem IDs, INTA#.
constexpr PciDevice::Identity kIdentity{0x10ec, 0x8029, 0x00, 0x020000, 0x1af4, 0x1100, 0x00, 1};
constexpr u8 kStatusInterrupt = 0x08;  // status register bit 3
}  // namespace

Ne2000Pci::Ne2000Pci(std::string name, unsigned slot, const MacAddress& mac, PortBus& ports, IrqLine intx)
    : Dp8390(name, "ne2k_pci", mac), PciDevice(name, slot, 0, kIdentity), m_intx(intx) {
  add_io_bar(0, kIoBarSize, &ports, this);
}

u32 Ne2000Pci::config_read(u8 offset, unsigned size) {
  u32 v = PciDevice::config_read(offset, size);
  // The interrupt status bit is live, not stored, so it never goes stale
  // in saved configuration space.
  if (offset <= 0x06 && offset + size > 0x06 && interrupt_pending()) {
    v |= u32{kStatusInterrupt} << (8 * (0x06 - offset));
  }
  return v;
}

void Ne2000Pci::config_write(u8 offset, unsigned size, u32 value) {
  PciDevice::config_write(offset, size, value);
  update_irq();  // INTx disable may have changed
}

}  // namespace reel
