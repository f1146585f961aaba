#pragma once

#include "core/device.h"
#include "core/interrupts.h"

namespace reel {

class PortBus;

// The PC's two cascaded 8259A interrupt controllers (master on 0x20-0x21,
// slave on 0xA0-0xA1, its INT on master IR2) and the ELCR edge/level
// registers at 0x4D0-0x4D1. Implements the IRQ lines devices raise and the
// INTR/INTA interface the CPU uses.
class Pic : public Device, public IrqSink, public InterruptController {
 public:
  explicit Pic(IntrListener& cpu);

  void map_into(PortBus& ports);

  void reset() override;
  u32 read(u32 offset, unsigned size) override;
  void write(u32 offset, unsigned size, u32 value) override;

  void set_irq(unsigned line, bool level) override;

  // Edge/level selection for IRQ 0-15 as firmware programs ELCR (SeaBIOS
  // makes the PIRQ-routed IRQs level triggered). Bits the PIIX3 hard-wires
  // to edge (IRQ 0-2, 8, 13) are ignored.
  void set_elcr(u16 level_irqs);
  u16 elcr() const { return static_cast<u16>(m_chip[0].elcr | m_chip[1].elcr << 8); }
  bool intr_pending() const override { return m_intr; }
  u8 acknowledge() override;

  // One 8259A.
  struct Chip {
    u8 irr = 0;    // requests latched
    u8 isr = 0;    // in service
    u8 imr = 0;    // masked
    u8 lines = 0;  // current input levels
    u8 elcr = 0;   // 1 = level triggered
    u8 vector_base = 0;
    u8 priority_add = 0;  // lowest-priority rotation: IR (priority_add) is highest
    u8 init_step = 0;     // 0 = ready, 2..4 = expecting ICW2..ICW4
    bool icw4_needed = false;
    bool single = false;
    bool auto_eoi = false;
    bool rotate_on_auto_eoi = false;
    bool read_isr = false;
    bool poll = false;
    bool special_mask = false;
    bool special_fully_nested = false;
    u8 elcr_mask = 0;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(irr), REEL_FIELD(isr), REEL_FIELD(imr), REEL_FIELD(lines), REEL_FIELD(elcr),
         REEL_FIELD(vector_base), REEL_FIELD(priority_add), REEL_FIELD(init_step), REEL_FIELD(icw4_needed),
         REEL_FIELD(single), REEL_FIELD(auto_eoi), REEL_FIELD(rotate_on_auto_eoi), REEL_FIELD(read_isr),
         REEL_FIELD(poll), REEL_FIELD(special_mask), REEL_FIELD(special_fully_nested), REEL_FIELD(elcr_mask));
    }
  };

  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("master", m_chip[0]), cereal::make_nvp("slave", m_chip[1]), REEL_FIELD(m_intr),
       REEL_FIELD(m_spurious));
  }
  REEL_DEVICE_STATE

  const Chip& chip(int i) const { return m_chip[i]; }
  u64 spurious() const { return m_spurious; }

 private:
  static int highest_priority(const Chip& c, u8 bits);
  // The IR the chip would signal now, or -1.
  static int pending_irq(const Chip& c);
  void set_chip_line(int chip, unsigned irq, bool level);
  void update();
  u8 read_chip(int chip, unsigned a0);
  void write_chip(int chip, unsigned a0, u8 value);
  u8 poll_chip(int chip);
  void eoi(Chip& c, int irq);
  void write_elcr(int chip, u8 value);
  u8 read_byte(u32 offset);
  void write_byte(u32 offset, u8 value);

  IntrListener& m_cpu;
  Chip m_chip[2];
  bool m_intr = false;
  u64 m_spurious = 0;
};

}  // namespace reel
