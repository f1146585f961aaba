#include "devices/piix3_isa_bridge.h"

namespace reel {

Piix3IsaBridge::Piix3IsaBridge()
    : PciDevice("piix3", 1, 0, Identity{0x8086, 0x7000, 0x00, 0x060100, 0, 0, 0x80, 0}) {
  m_config[0x60] = 10;
  m_config[0x61] = 10;
  m_config[0x62] = 11;
  m_config[0x63] = 11;
}

void Piix3IsaBridge::config_write(u8 offset, unsigned size, u32 value) {
  for (unsigned i = 0; i < size; ++i) {
    const unsigned reg = offset + i;
    // PIRQ routing: bit 7 disables, bits 3-0 the IRQ.
    if (reg >= 0x60 && reg <= 0x63) m_config[reg] = static_cast<u8>(value >> (8 * i)) & 0x8f;
  }
  PciDevice::config_write(offset, size, value);
}

int Piix3IsaBridge::isa_irq_for(unsigned slot, unsigned pin) const {
  if (pin < 1 || pin > 4) return -1;
  // The i440FX board wiring (QEMU's pc, SeaBIOS's piix table): INTA# of
  // slot 1 is PIRQA, and each slot further rotates by one.
  const unsigned pirq = (slot + 3 + pin - 1) & 3;
  const u8 route = m_config[0x60 + pirq];
  if (route & 0x80) return -1;
  return route & 0x0f;
}

u16 Piix3IsaBridge::routed_irq_mask() const {
  u16 mask = 0;
  for (unsigned i = 0; i < 4; ++i) {
    const u8 route = m_config[0x60 + i];
    if (!(route & 0x80) && (route & 0x0f) >= 3) mask = static_cast<u16>(mask | 1u << (route & 0x0f));
  }
  return mask;
}

}  // namespace reel
