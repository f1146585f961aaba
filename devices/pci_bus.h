#pragma once

#include <functional>
#include <vector>

#include "core/device.h"

namespace reel {

class PciDevice;
class PortBus;

// PCI configuration mechanism #1: the address register at 0xCF8 (enable
// bit 31, bus, device, function, register) and the data window at
// 0xCFC-0xCFF. Bus 0 only; absent functions read all-ones. A byte access to
// 0xCF9 reaches the PIIX3's reset control register instead (Linux's
// `reboot=pci`, and its fallback when the keyboard controller's pulse did
// not reset): setting bit 2 (reset CPU) asks the board to reset.
class PciBus : public Device {
 public:
  PciBus() : Device("pci") {}
  void set_reset_handler(std::function<void()> on_reset) { m_on_reset = std::move(on_reset); }
  void map_into(PortBus& ports);
  void attach(PciDevice* device);
  PciDevice* find(unsigned slot, unsigned function) const;
  const std::vector<PciDevice*>& devices() const { return m_devices; }

  void reset() override {
    m_address = 0;
    m_reset_control = 0;
  }
  u32 read(u32 offset, unsigned size) override;
  void write(u32 offset, unsigned size, u32 value) override;

  template <class Archive>
  void serialize(Archive& ar);
  REEL_DEVICE_STATE

 private:
  PciDevice* selected() const;
  u32 m_address = 0;
  u8 m_reset_control = 0;  // 0xCF9: bit 1 hard reset, bit 2 reset CPU
  std::function<void()> m_on_reset;
  std::vector<PciDevice*> m_devices;  // in slot order, for a deterministic scan
};

}  // namespace reel
