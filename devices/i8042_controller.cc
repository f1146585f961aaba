#include "devices/i8042_controller.h"

#include <utility>

#include "core/port_bus.h"

namespace reel {

namespace {
// Status register bits.
constexpr u8 kOutputFull = 0x01, kSystemFlag = 0x04, kCommandLast = 0x08, kNotInhibited = 0x10,
             kAuxOutputFull = 0x20;
// Command byte bits.
constexpr u8 kKeyboardIrq = 0x01, kAuxIrq = 0x02, kCommandSystemFlag = 0x04, kKeyboardDisabled = 0x10,
             kAuxDisabled = 0x20;
// Output port bits: 0 is the CPU reset line (active low), 1 the A20 gate.
constexpr u8 kResetLine = 0x01;
}  // namespace

I8042Controller::I8042Controller(IrqLine keyboard_irq, IrqLine aux_irq, std::function<void()> on_reset)
    : Device("i8042"), m_keyboard_irq(keyboard_irq), m_aux_irq(aux_irq), m_on_reset(std::move(on_reset)) {
  reset();
}

void I8042Controller::map_into(PortBus& ports) {
  ports.map(kDataPort, 1, this, 0);
  ports.map(kCommandPort, 1, this, 4);
}

// The state firmware leaves (what QEMU's controller starts with): both
// interrupts enabled, translation on, self-test passed, A20 on.
void I8042Controller::reset() {
  m_command_byte = kKeyboardIrq | kAuxIrq | kCommandSystemFlag | 0x40;
  m_output_port = 0x03;
  m_self_tested = true;
  m_last_was_command = false;
  m_pending = 0;
  m_keyboard_pending = 0;
  m_queue.clear();
  m_queue_aux.clear();
  update_irqs();
}

u8 I8042Controller::status() const {
  u8 s = kNotInhibited;
  if (m_self_tested || (m_command_byte & kCommandSystemFlag)) s |= kSystemFlag;
  if (m_last_was_command) s |= kCommandLast;
  if (!m_queue.empty()) {
    s |= kOutputFull;
    if (m_queue_aux.front()) s |= kAuxOutputFull;
  }
  return s;
}

u32 I8042Controller::read(u32 offset, unsigned size) {
  const u32 upper = size == 1 ? 0 : size == 2 ? 0xff00u : 0xffffff00u;
  if (offset == 4) return upper | status();
  // Reading an empty buffer returns the last byte again on real parts;
  // nothing relies on it, and 0 is what QEMU returns.
  u8 byte = 0;
  if (!m_queue.empty()) {
    byte = m_queue.front();
    m_queue.erase(m_queue.begin());
    m_queue_aux.erase(m_queue_aux.begin());
    update_irqs();
  }
  return upper | byte;
}

void I8042Controller::write(u32 offset, unsigned, u32 value) {
  const u8 byte = static_cast<u8>(value);
  if (offset == 4) {
    m_last_was_command = true;
    m_pending = 0;
    command(byte);
    return;
  }
  m_last_was_command = false;
  const u8 pending = m_pending;
  m_pending = 0;
  switch (pending) {
    case 0x60:  // write command byte
      m_command_byte = byte;
      update_irqs();
      break;
    case 0xd1:  // write output port
      m_output_port = byte;
      if (!(byte & kResetLine)) request_reset();
      break;
    case 0xd2:  // write keyboard output buffer (as if the keyboard sent it)
      push(byte, false);
      break;
    case 0xd3:  // write aux output buffer
      push(byte, true);
      break;
    case 0xd4:  // to the aux device: there is no mouse, so nothing answers
      break;
    default:
      keyboard_byte(byte);
      break;
  }
}

void I8042Controller::command(u8 cmd) {
  if (cmd >= 0xf0) {
    // Pulse the output lines whose bit is 0 in the low nibble; line 0 is
    // reset (0xFE is the classic reboot).
    if (!(cmd & kResetLine)) request_reset();
    return;
  }
  switch (cmd) {
    case 0x20:  // read command byte
      push(m_command_byte, false);
      break;
    case 0x60:
    case 0xd1:
    case 0xd2:
    case 0xd3:
    case 0xd4:
      m_pending = cmd;
      break;
    case 0xa7:
      m_command_byte |= kAuxDisabled;
      break;
    case 0xa8:
      m_command_byte &= static_cast<u8>(~kAuxDisabled);
      break;
    case 0xa9:  // aux interface test: passed
    case 0xab:  // keyboard interface test: passed
      push(0x00, false);
      break;
    case 0xaa:  // controller self-test
      m_self_tested = true;
      push(0x55, false);
      break;
    case 0xad:
      m_command_byte |= kKeyboardDisabled;
      break;
    case 0xae:
      m_command_byte &= static_cast<u8>(~kKeyboardDisabled);
      break;
    case 0xc0:  // input port: keyboard not inhibited, colour display
      push(0x80, false);
      break;
    case 0xd0:  // read output port
      push(m_output_port, false);
      break;
    default:  // unknown commands are ignored, as the 8042 does
      break;
  }
}

// The keyboard behind the controller: acknowledges commands and their
// parameters, answers reset, echo and identify; it never sends a key.
void I8042Controller::keyboard_byte(u8 byte) {
  if (m_keyboard_pending) {
    m_keyboard_pending = 0;
    push(0xfa, false);
    return;
  }
  switch (byte) {
    case 0xff:  // reset: ACK, then self-test passed
      push(0xfa, false);
      push(0xaa, false);
      break;
    case 0xee:  // echo
      push(0xee, false);
      break;
    case 0xf2:  // identify: MF2 keyboard
      push(0xfa, false);
      push(0xab, false);
      push((m_command_byte & 0x40) ? 0x41 : 0x83, false);
      break;
    case 0xed:  // LEDs, typematic rate, scan code set: a parameter follows
    case 0xf3:
    case 0xf0:
      m_keyboard_pending = byte;
      push(0xfa, false);
      break;
    default:
      push(0xfa, false);
      break;
  }
}

void I8042Controller::push(u8 byte, bool aux) {
  if (m_queue.size() >= kQueueLimit) return;
  m_queue.push_back(byte);
  m_queue_aux.push_back(aux ? 1 : 0);
  update_irqs();
}

void I8042Controller::update_irqs() {
  const bool full = !m_queue.empty();
  const bool aux = full && m_queue_aux.front();
  m_keyboard_irq.set(full && !aux && (m_command_byte & kKeyboardIrq));
  m_aux_irq.set(aux && (m_command_byte & kAuxIrq));
}

void I8042Controller::request_reset() {
  if (m_on_reset) m_on_reset();
}

}  // namespace reel
