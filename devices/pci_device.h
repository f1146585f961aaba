#pragma once

#include <array>
#include <string>

#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

class PortBus;
class Device;

// One PCI function's type-0 configuration space: identity registers, the
// command register, BARs with the sizing protocol, interrupt line and pin.
// When an I/O BAR moves or I/O decoding is switched, the function maps or
// unmaps its registers on the port bus (served by `io_device`, which sees
// offsets inside the BAR).
class PciDevice {
 public:
  struct Identity {
    u16 vendor = 0xffff;
    u16 device = 0xffff;
    u8 revision = 0;
    u32 class_code = 0;  // base class << 16 | subclass << 8 | prog-if
    u16 subsystem_vendor = 0;
    u16 subsystem = 0;
    u8 header_type = 0;
    u8 interrupt_pin = 0;  // 1 = INTA#
  };

  PciDevice(std::string name, unsigned slot, unsigned function, const Identity& id);
  virtual ~PciDevice() = default;

  const std::string& pci_name() const { return m_pci_name; }
  unsigned slot() const { return m_slot; }
  unsigned function() const { return m_function; }

  // An I/O BAR of `size` bytes (a power of two >= 4) served by io_device.
  void add_io_bar(unsigned index, u32 size, PortBus* ports, Device* io_device);
  // A 32-bit non-prefetchable memory BAR of `size` bytes (a power of two
  // >= 16). Where it decodes is reported to memory_bar_changed(), so the
  // owner can place its registers on the MMIO bus.
  void add_memory_bar(unsigned index, u32 size);

  virtual u32 config_read(u8 offset, unsigned size);
  virtual void config_write(u8 offset, unsigned size, u32 value);

  u16 command() const { return static_cast<u16>(m_config[4] | m_config[5] << 8); }
  u32 bar(unsigned index) const;
  u32 bar_size(unsigned index) const { return m_bar_size[index]; }
  bool bar_is_io(unsigned index) const { return m_bar_io[index]; }
  u8 interrupt_line() const { return m_config[0x3c]; }
  u8 interrupt_pin() const { return m_config[0x3d]; }
  // Guest BAR placements that collided with other ports and do not decode.
  u64 bar_conflicts() const { return m_bar_conflicts; }

  // Where BAR `index` decodes now (0 = nowhere).
  u32 decoded_base(unsigned index) const {
    return m_bar_io[index] ? m_mapped_io[index] : m_mapped_mem[index];
  }

  template <class Archive>
  void serialize_pci(Archive& ar) {
    if constexpr (Archive::is_loading::value) {
      // The bus mappings belong to the live machine, not to the archive:
      // load the registers, then move the mappings to where they decode.
      auto io = m_mapped_io;
      auto mem = m_mapped_mem;
      ar(cereal::make_nvp("config", m_config), cereal::make_nvp("mapped_io_base", io),
         cereal::make_nvp("mapped_mem_base", mem));
      remap_bars();
    } else {
      ar(cereal::make_nvp("config", m_config), cereal::make_nvp("mapped_io_base", m_mapped_io),
         cereal::make_nvp("mapped_mem_base", m_mapped_mem));
    }
  }

 protected:
  // A memory BAR now decodes at `base` (0: no longer decodes). The default
  // does nothing; NICs with MMIO registers map them here.
  virtual void memory_bar_changed(unsigned index, u32 base) {}

  std::array<u8, 256> m_config{};

 private:
  void write_byte(u8 offset, u8 value);
  void remap_bars();

  std::string m_pci_name;
  unsigned m_slot;
  unsigned m_function;
  std::array<u32, 6> m_bar_size{};
  std::array<bool, 6> m_bar_io{};
  std::array<Device*, 6> m_bar_device{};
  PortBus* m_ports = nullptr;
  std::array<u32, 6> m_mapped_io{};   // 0 = not mapped
  std::array<u32, 6> m_mapped_mem{};  // 0 = not decoding
  u64 m_bar_conflicts = 0;
};

}  // namespace reel
