#pragma once

#include "core/device.h"

namespace reel {

class PortBus;

// Port 0x80, the POST diagnostic port. Firmware writes progress codes to it
// and Linux writes it as a short I/O delay; the last value is kept and
// readable, so dumps show where firmware stopped.
class PostPort : public Device {
 public:
  static constexpr u16 kPort = 0x80;

  PostPort() : Device("post") {}
  void map_into(PortBus& ports);

  void reset() override { m_code = 0; }
  u32 read(u32 offset, unsigned size) override;
  void write(u32 offset, unsigned size, u32 value) override;

  u8 code() const { return m_code; }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_code));
  }
  REEL_DEVICE_STATE

 private:
  u8 m_code = 0;
};

}  // namespace reel
