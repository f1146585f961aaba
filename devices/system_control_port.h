#pragma once

#include <functional>

#include "core/device.h"

namespace reel {

class PortBus;

// Port 0x92, system control port A. Bit 1 is the fast A20 gate (kept as
// state: reel's memory has no A20 wrap, and guests read it back before
// toggling). Bit 0 is the fast reset: its rising edge asks the board to
// reset the machine.
class SystemControlPort : public Device {
 public:
  static constexpr u16 kPort = 0x92;

  explicit SystemControlPort(std::function<void()> on_reset);
  void map_into(PortBus& ports);

  // A20 stays enabled over a reset: a -kernel boot starts with it on.
  void reset() override { m_value &= 0x02; }
  u32 read(u32 offset, unsigned size) override;
  void write(u32 offset, unsigned size, u32 value) override;

  bool a20_enabled() const { return m_value & 0x02; }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_value));
  }
  REEL_DEVICE_STATE

 private:
  std::function<void()> m_on_reset;
  u8 m_value = 0x02;
};

}  // namespace reel
