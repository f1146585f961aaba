#pragma once

#include "core/device.h"

namespace reel {

class PortBus;

// Port 0x80, the POST diagnostic port. Firmware and Linux write it as a
// short I/O delay; the last value is kept (and readable) for dumps.
class PostPort : public Device {
 public:
  PostPort() : Device("post") {}
  void map_into(PortBus& ports);

  void reset() override { m_code = 0; }
  u32 read(u32, unsigned) override { return m_code; }
  void write(u32, unsigned, u32 value) override { m_code = static_cast<u8>(value); }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_code));
  }
  REEL_DEVICE_STATE

 private:
  u8 m_code = 0;
};

}  // namespace reel
