#include "devices/pci_device.h"

#include <stdexcept>

#include "core/port_bus.h"

namespace reel {

PciDevice::PciDevice(std::string name, unsigned slot, unsigned function, const Identity& id)
    : m_pci_name(std::move(name)), m_slot(slot), m_function(function) {
  m_config[0x00] = static_cast<u8>(id.vendor);
  m_config[0x01] = static_cast<u8>(id.vendor >> 8);
  m_config[0x02] = static_cast<u8>(id.device);
  m_config[0x03] = static_cast<u8>(id.device >> 8);
  m_config[0x08] = id.revision;
  m_config[0x09] = static_cast<u8>(id.class_code);
  m_config[0x0a] = static_cast<u8>(id.class_code >> 8);
  m_config[0x0b] = static_cast<u8>(id.class_code >> 16);
  m_config[0x0e] = id.header_type;
  m_config[0x2c] = static_cast<u8>(id.subsystem_vendor);
  m_config[0x2d] = static_cast<u8>(id.subsystem_vendor >> 8);
  m_config[0x2e] = static_cast<u8>(id.subsystem);
  m_config[0x2f] = static_cast<u8>(id.subsystem >> 8);
  m_config[0x3d] = id.interrupt_pin;
}

void PciDevice::add_io_bar(unsigned index, u32 size, PortBus* ports, Device* io_device) {
  m_bar_size[index] = size;
  m_bar_io[index] = true;
  m_bar_device[index] = io_device;
  m_ports = ports;
  m_config[0x10 + index * 4] = 0x01;
}

void PciDevice::add_memory_bar(unsigned index, u32 size) {
  m_bar_size[index] = size;
  m_bar_io[index] = false;
  m_config[0x10 + index * 4] = 0x00;  // 32-bit, anywhere, not prefetchable
}

u32 PciDevice::bar(unsigned index) const {
  const u8* p = &m_config[0x10 + index * 4];
  return u32{p[0]} | u32{p[1]} << 8 | u32{p[2]} << 16 | u32{p[3]} << 24;
}

u32 PciDevice::config_read(u8 offset, unsigned size) {
  u32 v = 0;
  for (unsigned i = 0; i < size && offset + i < 256; ++i) v |= u32{m_config[offset + i]} << (8 * i);
  return v;
}

void PciDevice::write_byte(u8 offset, u8 value) {
  if (offset >= 0x10 && offset < 0x28) {
    const unsigned index = (offset - 0x10) / 4;
    const unsigned byte = (offset - 0x10) % 4;
    const u32 size = m_bar_size[index];
    if (size == 0) return;  // unimplemented BARs read as zero
    // Address bits below the BAR's size are hard-wired to zero, so writing
    // all-ones reads back the size mask; the low type bits are read-only.
    const u32 mask = ~(size - 1) & (m_bar_io[index] ? 0xfffffffcu : 0xfffffff0u);
    const u8 keep_mask = static_cast<u8>(mask >> (8 * byte));
    u8& b = m_config[offset];
    b = static_cast<u8>((value & keep_mask) | (b & ~keep_mask));
    return;
  }
  switch (offset) {
    case 0x04:
      m_config[4] = value & 0x07;
      break;  // I/O, memory, bus master
    case 0x05:
      m_config[5] = value & 0x05;
      break;  // SERR#, INTx disable
    case 0x06:
      break;
    case 0x07:
      m_config[7] &= static_cast<u8>(~value);
      break;  // status: write one to clear
    case 0x0c:
      m_config[0x0c] = value;
      break;  // cache line size
    case 0x0d:
      m_config[0x0d] = value;
      break;  // latency timer
    case 0x3c:
      m_config[0x3c] = value;
      break;  // interrupt line
    default:
      break;  // read-only
  }
}

void PciDevice::config_write(u8 offset, unsigned size, u32 value) {
  for (unsigned i = 0; i < size && offset + i < 256; ++i) {
    write_byte(static_cast<u8>(offset + i), static_cast<u8>(value >> (8 * i)));
  }
  // The command register or a BAR changed: decoding may have moved.
  if (offset < 0x28 && offset + size > 0x04) remap_bars();
}

void PciDevice::remap_bars() {
  const bool io_on = command() & 0x01;
  const bool mem_on = command() & 0x02;
  for (unsigned i = 0; i < 6; ++i) {
    if (m_bar_size[i] == 0) continue;
    if (!m_bar_io[i]) {
      const u32 base = bar(i) & 0xfffffff0u;
      // A BAR still being sized (all-ones) or left at 0 decodes nowhere.
      const bool sizing = base == (~(m_bar_size[i] - 1) & 0xfffffff0u);
      const u32 want = (mem_on && base != 0 && !sizing) ? base : 0;
      if (want == m_mapped_mem[i]) continue;
      m_mapped_mem[i] = want;
      memory_bar_changed(i, want);
      continue;
    }
    if (!m_ports || !m_bar_device[i]) continue;
    const u32 base = bar(i) & 0xfffffffcu;
    const u32 want = (io_on && base != 0 && base + m_bar_size[i] <= 0x10000) ? base : 0;
    if (want == m_mapped_io[i]) continue;
    if (m_mapped_io[i]) m_ports->unmap(static_cast<u16>(m_mapped_io[i]), m_bar_size[i]);
    m_mapped_io[i] = 0;
    if (want) {
      try {
        m_ports->map(static_cast<u16>(want), m_bar_size[i], m_bar_device[i]);
        m_mapped_io[i] = want;
      } catch (const std::invalid_argument&) {
        // The guest placed the BAR over another device's ports: like a bus
        // conflict on real hardware, the registers simply do not decode.
        ++m_bar_conflicts;
      }
    }
  }
}

}  // namespace reel
