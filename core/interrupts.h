#pragma once

#include "core/types.h"

namespace reel {

// Something that takes interrupt request lines (the PIC pair).
class IrqSink {
 public:
  virtual ~IrqSink() = default;
  virtual void set_irq(unsigned line, bool level) = 0;
};

// One line into an IrqSink, handed to devices so they need not know the PIC.
struct IrqLine {
  IrqSink* sink = nullptr;
  unsigned line = 0;
  void set(bool level) const {
    if (sink) sink->set_irq(line, level);
  }
  void raise() const { set(true); }
  void lower() const { set(false); }
};

// The CPU's view of the interrupt controller: INTR and INTA.
class InterruptController {
 public:
  virtual ~InterruptController() = default;
  virtual bool intr_pending() const = 0;
  // The INTA cycle: returns the vector and updates ISR/IRR as hardware does.
  virtual u8 acknowledge() = 0;
};

// The CPU listens for changes of the INTR level, so it only looks at the
// controller when something changed.
class IntrListener {
 public:
  virtual ~IntrListener() = default;
  virtual void intr_changed() = 0;
};

}  // namespace reel
