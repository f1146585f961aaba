#pragma once

#include <functional>
#include <vector>

#include "core/device.h"
#include "core/interrupts.h"

namespace reel {

class PortBus;

// The 8042 keyboard controller at 0x60 (data) and 0x64 (status/command),
// as much of it as software that finds no keyboard uses: the controller
// commands (self-test, interface tests, command byte, output port, pulsing
// the output lines), the status register, and a keyboard that acknowledges
// what it is sent but never types. Its reason for being here is the reset
// line: Linux reboots by pulsing output line 0 (command 0xFE on 0x64), and
// clearing bit 0 of the output port through command 0xD1 does the same;
// either asks the board to reset, which ends reel under -no-reboot.
// Replies wait in a short output buffer; IRQ 1 (keyboard) or IRQ 12 (aux)
// is raised while a byte waits and the command byte enables it.
class I8042Controller : public Device {
 public:
  static constexpr u16 kDataPort = 0x60;
  static constexpr u16 kCommandPort = 0x64;

  I8042Controller(IrqLine keyboard_irq, IrqLine aux_irq, std::function<void()> on_reset);
  void map_into(PortBus& ports);

  void reset() override;
  u32 read(u32 offset, unsigned size) override;
  void write(u32 offset, unsigned size, u32 value) override;

  u8 status() const;
  u8 command_byte() const { return m_command_byte; }
  u8 output_port() const { return m_output_port; }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_command_byte), REEL_FIELD(m_output_port), REEL_FIELD(m_self_tested),
       REEL_FIELD(m_last_was_command), REEL_FIELD(m_pending), REEL_FIELD(m_keyboard_pending),
       REEL_FIELD(m_queue), REEL_FIELD(m_queue_aux));
  }
  REEL_DEVICE_STATE

 private:
  // Replies queued beyond this are dropped: nothing here needs more.
  static constexpr std::size_t kQueueLimit = 16;

  void push(u8 byte, bool aux);
  void command(u8 cmd);
  void keyboard_byte(u8 byte);
  void update_irqs();
  void request_reset();

  IrqLine m_keyboard_irq, m_aux_irq;
  std::function<void()> m_on_reset;
  u8 m_command_byte = 0;
  u8 m_output_port = 0;
  bool m_self_tested = false;
  bool m_last_was_command = false;  // status bit 3: the last write went to 0x64
  u8 m_pending = 0;                 // controller command waiting for its data byte
  u8 m_keyboard_pending = 0;        // keyboard command waiting for its parameter
  std::vector<u8> m_queue;          // output buffer, oldest first
  std::vector<u8> m_queue_aux;      // per byte: 1 when it came from the aux port
};

}  // namespace reel
