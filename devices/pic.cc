#include "devices/pic.h"

#include "core/port_bus.h"
#include "devices/byte_lanes.h"

namespace reel {

namespace {
constexpr u32 kMasterBase = 0x00;
constexpr u32 kSlaveBase = 0x10;
constexpr u32 kElcrBase = 0x20;
}  // namespace

Pic::Pic(IntrListener& cpu) : Device("pic"), m_cpu(cpu) { reset(); }

void Pic::map_into(PortBus& ports) {
  ports.map(0x20, 2, this, kMasterBase);
  ports.map(0xA0, 2, this, kSlaveBase);
  ports.map(0x4D0, 2, this, kElcrBase);
}

void Pic::reset() {
  // The input lines belong to the devices, not to the PIC: they keep their
  // levels across a reset so that a device holding its line high is not
  // forgotten.
  const u8 lines[2] = {m_chip[0].lines, m_chip[1].lines};
  for (int i = 0; i < 2; ++i) {
    m_chip[i] = Chip{};
    m_chip[i].lines = lines[i];
  }
  // IRQ0-2 on the master and IRQ8 and IRQ13 on the slave are always edge.
  m_chip[0].elcr_mask = 0xf8;
  m_chip[1].elcr_mask = 0xde;
  if (m_intr) {
    m_intr = false;
    m_cpu.intr_changed();
  }
}

int Pic::highest_priority(const Chip& c, u8 bits) {
  if (!bits) return -1;
  for (int i = 0; i < 8; ++i) {
    const int irq = (i + c.priority_add) & 7;
    if (bits & (1u << irq)) return irq;
  }
  return -1;
}

int Pic::pending_irq(const Chip& c) {
  const int req = highest_priority(c, c.irr & static_cast<u8>(~c.imr));
  if (req < 0) return -1;
  // In special mask mode, masked levels do not block lower ones.
  u8 in_service = c.special_mask ? static_cast<u8>(c.isr & ~c.imr) : c.isr;
  // Special fully nested mode (master): the cascade input may interrupt
  // its own in-service level.
  if (c.special_fully_nested) in_service &= static_cast<u8>(~(1u << 2));
  const int cur = highest_priority(c, in_service);
  if (cur >= 0) {
    const int req_rank = (req - c.priority_add) & 7;
    const int cur_rank = (cur - c.priority_add) & 7;
    if (cur_rank <= req_rank) return -1;
  }
  return req;
}

void Pic::set_chip_line(int chip, unsigned irq, bool level) {
  Chip& c = m_chip[chip];
  const u8 bit = static_cast<u8>(1u << irq);
  const bool was = c.lines & bit;
  if (c.elcr & bit) {
    // Level triggered: the request follows the line.
    if (level) {
      c.irr |= bit;
    } else {
      c.irr &= static_cast<u8>(~bit);
    }
  } else if (level && !was) {
    // Edge triggered: a rising edge latches the request until INTA.
    c.irr |= bit;
  }
  if (level) {
    c.lines |= bit;
  } else {
    c.lines &= static_cast<u8>(~bit);
  }
}

void Pic::update() {
  // The slave's INT output is the master's IR2.
  set_chip_line(0, 2, pending_irq(m_chip[1]) >= 0);
  const bool intr = pending_irq(m_chip[0]) >= 0;
  if (intr != m_intr) {
    m_intr = intr;
    m_cpu.intr_changed();
  }
}

void Pic::set_irq(unsigned line, bool level) {
  if (line >= 16 || line == 2) return;  // IR2 is the cascade, not a device line
  set_chip_line(line >= 8 ? 1 : 0, line & 7, level);
  update();
}

u8 Pic::acknowledge() {
  auto ack = [](Chip& c, int irq) {
    const u8 bit = static_cast<u8>(1u << irq);
    if (!(c.elcr & bit)) c.irr &= static_cast<u8>(~bit);
    if (c.auto_eoi) {
      if (c.rotate_on_auto_eoi) c.priority_add = static_cast<u8>((irq + 1) & 7);
    } else {
      c.isr |= bit;
    }
  };
  Chip& master = m_chip[0];
  const int irq = pending_irq(master);
  u8 vector;
  if (irq < 0) {
    // The request went away before INTA: the 8259A answers IR7.
    ++m_spurious;
    vector = static_cast<u8>(master.vector_base | 7);
  } else if (irq == 2 && !master.single) {
    ack(master, 2);
    Chip& slave = m_chip[1];
    const int sirq = pending_irq(slave);
    if (sirq < 0) {
      ++m_spurious;
      vector = static_cast<u8>(slave.vector_base | 7);
    } else {
      ack(slave, sirq);
      vector = static_cast<u8>(slave.vector_base + sirq);
    }
  } else {
    ack(master, irq);
    vector = static_cast<u8>(master.vector_base + irq);
  }
  update();
  return vector;
}

void Pic::eoi(Chip& c, int irq) {
  if (irq >= 0) c.isr &= static_cast<u8>(~(1u << irq));
}

u8 Pic::poll_chip(int chip) {
  Chip& c = m_chip[chip];
  c.poll = false;
  const int irq = pending_irq(c);
  if (irq < 0) return 0;
  // A poll read acts as an INTA for this chip.
  const u8 bit = static_cast<u8>(1u << irq);
  if (!(c.elcr & bit)) c.irr &= static_cast<u8>(~bit);
  c.isr |= bit;
  update();
  return static_cast<u8>(0x80 | irq);
}

u8 Pic::read_chip(int chip, unsigned a0) {
  Chip& c = m_chip[chip];
  if (a0) return c.imr;
  if (c.poll) return poll_chip(chip);
  return c.read_isr ? c.isr : c.irr;
}

void Pic::write_chip(int chip, unsigned a0, u8 value) {
  Chip& c = m_chip[chip];
  if (!a0) {
    if (value & 0x10) {
      // ICW1 starts initialisation: mask, in-service and edge state clear.
      const u8 elcr = c.elcr, mask = c.elcr_mask, lines = c.lines;
      c = Chip{};
      c.elcr = elcr;
      c.elcr_mask = mask;
      c.lines = lines;
      // Level-triggered inputs that are still asserted request again at
      // once; edge inputs need a fresh rising edge.
      c.irr = lines & elcr;
      c.icw4_needed = value & 0x01;
      c.single = value & 0x02;
      c.init_step = 2;
    } else if (value & 0x08) {
      // OCW3
      if (value & 0x04) c.poll = true;
      if (value & 0x02) c.read_isr = value & 0x01;
      if (value & 0x40) c.special_mask = value & 0x20;
    } else {
      // OCW2
      const int level = value & 7;
      switch (value >> 5) {
        case 0:
          c.rotate_on_auto_eoi = false;
          break;
        case 4:
          c.rotate_on_auto_eoi = true;
          break;
        case 1:
          eoi(c, highest_priority(c, c.isr));
          break;
        case 5: {
          const int irq = highest_priority(c, c.isr);
          eoi(c, irq);
          if (irq >= 0) c.priority_add = static_cast<u8>((irq + 1) & 7);
          break;
        }
        case 3:
          eoi(c, level);
          break;
        case 7:
          eoi(c, level);
          c.priority_add = static_cast<u8>((level + 1) & 7);
          break;
        case 6:
          c.priority_add = static_cast<u8>((level + 1) & 7);
          break;
        default:
          break;
      }
    }
  } else {
    switch (c.init_step) {
      case 2:
        c.vector_base = value & 0xf8;
        c.init_step = c.single ? (c.icw4_needed ? 4 : 0) : 3;
        break;
      case 3:
        c.init_step = c.icw4_needed ? 4 : 0;  // ICW3: the PC's cascade wiring is fixed
        break;
      case 4:
        c.auto_eoi = value & 0x02;
        c.special_fully_nested = value & 0x10;
        c.init_step = 0;
        break;
      default:
        c.imr = value;  // OCW1
        break;
    }
  }
  update();
}

void Pic::write_elcr(int chip, u8 value) {
  Chip& c = m_chip[chip];
  c.elcr = value & c.elcr_mask;
  // A line that becomes level triggered requests exactly while asserted.
  c.irr = static_cast<u8>((c.irr & ~c.elcr) | (c.lines & c.elcr));
  update();
}

void Pic::set_elcr(u16 level_irqs) {
  write_elcr(0, static_cast<u8>(level_irqs));
  write_elcr(1, static_cast<u8>(level_irqs >> 8));
}

u8 Pic::read_byte(u32 offset) {
  switch (offset) {
    case kMasterBase:
    case kMasterBase + 1:
      return read_chip(0, offset & 1);
    case kSlaveBase:
    case kSlaveBase + 1:
      return read_chip(1, offset & 1);
    case kElcrBase:
      return m_chip[0].elcr;
    case kElcrBase + 1:
      return m_chip[1].elcr;
    default:
      return 0xff;
  }
}

void Pic::write_byte(u32 offset, u8 v) {
  switch (offset) {
    case kMasterBase:
    case kMasterBase + 1:
      write_chip(0, offset & 1, v);
      break;
    case kSlaveBase:
    case kSlaveBase + 1:
      write_chip(1, offset & 1, v);
      break;
    case kElcrBase:
      write_elcr(0, v);
      break;
    case kElcrBase + 1:
      write_elcr(1, v);
      break;
    default:
      break;
  }
}

u32 Pic::read(u32 offset, unsigned size) {
  return read_byte_lanes(offset, size, [this](u32 o) { return read_byte(o); });
}

void Pic::write(u32 offset, unsigned size, u32 value) {
  write_byte_lanes(offset, size, value, [this](u32 o, u8 v) { write_byte(o, v); });
}

}  // namespace reel
