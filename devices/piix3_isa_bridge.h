#pragma once

#include "devices/pci_device.h"

namespace reel {

// 00:01.0, the PIIX3 PCI-to-ISA bridge (8086:7000). Its PIRQ route
// registers (0x60-0x63) say which ISA IRQ each PCI interrupt line drives;
// they start as SeaBIOS leaves them: PIRQA-D -> 10, 10, 11, 11.
class Piix3IsaBridge : public PciDevice {
 public:
  Piix3IsaBridge();

  void config_write(u8 offset, unsigned size, u32 value) override;

  // The ISA IRQ for INTx pin (1 = INTA#) of a device in `slot`, with the
  // standard swizzle, or -1 when that PIRQ is disabled.
  int isa_irq_for(unsigned slot, unsigned pin) const;

  // ISA IRQs some PIRQ is routed to: the ones firmware makes level
  // triggered in the PIC's ELCR.
  u16 routed_irq_mask() const;
};

}  // namespace reel
