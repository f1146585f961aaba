#pragma once

#include <string>

#include "core/component.h"
#include "core/interrupts.h"

namespace reel {

// Several level-triggered sources wired to one PIC input, as PCI INTx pins
// routed to the same PIRQ (or two PIRQs on one ISA IRQ) are: the input is
// high while any source is. Each source drives its own bit.
class SharedIrqLine : public Component, public IrqSink {
 public:
  SharedIrqLine(std::string name, IrqLine out) : Component(std::move(name)), m_out(out) {}

  // The line source `index` (0..31) drives.
  IrqLine source(unsigned index) { return IrqLine{this, index}; }

  void set_irq(unsigned index, bool level) override {
    const u32 bit = u32{1} << (index & 31);
    m_levels = level ? (m_levels | bit) : (m_levels & ~bit);
    m_out.set(m_levels != 0);
  }
  bool level() const { return m_levels != 0; }

  void reset() override {}
  REEL_COMPONENT_STATE
  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_levels));
  }

 private:
  IrqLine m_out;
  u32 m_levels = 0;
};

}  // namespace reel
