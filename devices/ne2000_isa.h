#pragma once

#include <string>

#include "core/interrupts.h"
#include "devices/dp8390.h"

namespace reel {

class PortBus;

// The ISA NE2000 (QEMU's ne2k_isa): 32 ports at a jumpered base, one ISA
// IRQ line. The line follows ISR & IMR as a level; the PIC sees its edges
// (ISA IRQs are edge triggered), so a driver that leaves a cause pending
// gets a fresh edge when it rewrites IMR, as on the real board.
class Ne2000Isa : public Dp8390 {
 public:
  static constexpr u16 kDefaultIobase = 0x300;
  static constexpr unsigned kDefaultIrq = 9;

  // `irq` is the ISA line, e.g. IrqLine{&pic, kDefaultIrq}.
  Ne2000Isa(std::string name, const MacAddress& mac, u16 iobase, IrqLine irq);

  // Maps the 32-port window at iobase.
  void map_into(PortBus& ports);
  u16 iobase() const { return m_iobase; }

 protected:
  void drive_irq(bool level) override { m_irq.set(level); }

 private:
  u16 m_iobase;
  IrqLine m_irq;
};

}  // namespace reel
