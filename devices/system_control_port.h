#pragma once

#include <functional>

#include "core/device.h"

namespace reel {

class PortBus;

// Port 0x92, system control port A: bit 1 is the fast A20 gate (kept as
// state; reel's memory has no A20 wrap), bit 0 a write of 1 resets the
// machine.
class SystemControlPort : public Device {
 public:
  explicit SystemControlPort(std::function<void()> on_reset)
      : Device("port92"), m_on_reset(std::move(on_reset)) {}
  void map_into(PortBus& ports);

  void reset() override { m_value = 0x02; }
  u32 read(u32, unsigned) override { return m_value; }
  void write(u32, unsigned, u32 value) override {
    m_value = static_cast<u8>(value & 0x02);
    if (value & 0x01) m_on_reset();
  }

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
