#include "devices/pci_bus.h"

#include <algorithm>

#include "core/port_bus.h"
#include "devices/pci_device.h"

namespace reel {

void PciBus::map_into(PortBus& ports) {
  ports.map(0xcf8, 4, this, 0);
  ports.map(0xcfc, 4, this, 4);
}

void PciBus::attach(PciDevice* device) {
  m_devices.push_back(device);
  std::sort(m_devices.begin(), m_devices.end(), [](const PciDevice* a, const PciDevice* b) {
    return a->slot() * 8 + a->function() < b->slot() * 8 + b->function();
  });
}

PciDevice* PciBus::find(unsigned slot, unsigned function) const {
  for (PciDevice* d : m_devices) {
    if (d->slot() == slot && d->function() == function) return d;
  }
  return nullptr;
}

PciDevice* PciBus::selected() const {
  if (!(m_address & 0x80000000u)) return nullptr;
  if (((m_address >> 16) & 0xff) != 0) return nullptr;  // only bus 0 exists
  return find((m_address >> 11) & 0x1f, (m_address >> 8) & 7);
}

u32 PciBus::read(u32 offset, unsigned size) {
  if (offset < 4) {
    if (offset == 0 && size == 4) return m_address;
    if (offset == 1 && size == 1) return m_reset_control;
    return static_cast<u32>(m_address >> (8 * offset)) & (size == 1 ? 0xff : 0xffff);
  }
  const u32 ones = size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffffu;
  PciDevice* d = selected();
  if (!d) return ones;
  const u8 reg = static_cast<u8>((m_address & 0xfc) + (offset - 4));
  return d->config_read(reg, size) & ones;
}

void PciBus::write(u32 offset, unsigned size, u32 value) {
  if (offset < 4) {
    // Only a 32-bit write to 0xCF8 is a configuration address; byte
    // writes there belong to other chipset registers (e.g. 0xCF9 reset).
    if (offset == 0 && size == 4) {
      m_address = value & 0x80fffffcu;
    } else if (offset == 1 && size == 1) {
      // Only bits 1 and 2 exist. The reset happens on the write that sets
      // bit 2 (the register is cleared by the reset itself).
      m_reset_control = static_cast<u8>(value & 0x06);
      if ((value & 0x04) && m_on_reset) m_on_reset();
    }
    return;
  }
  PciDevice* d = selected();
  if (!d) return;
  d->config_write(static_cast<u8>((m_address & 0xfc) + (offset - 4)), size, value);
}

namespace {
// Nests one function's configuration space under its name in dumps.
struct PciConfigRef {
  PciDevice* device;
  template <class Archive>
  void serialize(Archive& ar) {
    device->serialize_pci(ar);
  }
};
}  // namespace

template <class Archive>
void PciBus::serialize(Archive& ar) {
  ar(REEL_FIELD(m_address), REEL_FIELD(m_reset_control));
  for (PciDevice* d : m_devices) ar(cereal::make_nvp(d->pci_name().c_str(), PciConfigRef{d}));
}

template void PciBus::serialize<BinaryOut>(BinaryOut&);
template void PciBus::serialize<BinaryIn>(BinaryIn&);
template void PciBus::serialize<JsonOut>(JsonOut&);

}  // namespace reel
