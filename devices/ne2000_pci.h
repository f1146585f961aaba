#pragma once

#include <string>

#include "core/interrupts.h"
#include "devices/dp8390.h"
#include "devices/pci_device.h"

namespace reel {

class PortBus;

// The PCI NE2000 (QEMU's ne2k_pci): a Realtek RTL8029AS, 10ec:8029, class
// 0x020000, its registers behind a 256-byte I/O BAR 0, interrupt pin INTA#.
// Attach it to the PciBus before firmware setup assigns the BAR; its
// configuration space is saved with the bus, its registers with the device.
// The pin is level triggered; `intx` is the ISA IRQ the PIIX3 routes it to
// (IrqLine{&pic, piix3.isa_irq_for(slot, 1)}), or any IrqSink that ORs
// the functions sharing that line. Command bit 10 (INTx disable) gates the
// pin; status bit 3 shows the pending interrupt either way.
class Ne2000Pci : public Dp8390, public PciDevice {
 public:
  static constexpr u32 kIoBarSize = 0x100;

  Ne2000Pci(std::string name, unsigned slot, const MacAddress& mac, PortBus& ports, IrqLine intx);

  u32 config_read(u8 offset, unsigned size) override;
  void config_write(u8 offset, unsigned size, u32 value) override;

 protected:
  void drive_irq(bool level) override { m_intx.set(level); }
  bool irq_gate() const override { return !(command() & 0x0400); }

 private:
  IrqLine m_intx;
};

}  // namespace reel
