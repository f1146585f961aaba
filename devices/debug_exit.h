#pragma once

#include <functional>

#include "core/device.h"

namespace reel {

class PortBus;

// QEMU's isa-debug-exit: a guest write of V ends the run with exit status
// (V << 1) | 1, so a test kernel can report pass/fail without a shutdown
// path and no guest can make reel exit 0 by accident. Reads return 0, as in
// QEMU. The status is reduced to the 8 bits a process exit status carries,
// which is what QEMU's exit() shows the shell.
class DebugExit : public Device {
 public:
  // QEMU's defaults; `-device isa-debug-exit,iobase=0xf4,iosize=0x04` is the
  // common spelling in test setups.
  static constexpr u16 kDefaultIobase = 0x501;
  static constexpr u32 kDefaultIosize = 2;

  explicit DebugExit(std::function<void(int status)> on_exit);

  void map_into(PortBus& ports, u16 iobase = kDefaultIobase, u32 iosize = kDefaultIosize);

  void reset() override {}
  u32 read(u32 offset, unsigned size) override;
  void write(u32 offset, unsigned size, u32 value) override;

  // The last value written (for dumps and tests).
  u32 last_value() const { return m_last; }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_last));
  }
  REEL_DEVICE_STATE

 private:
  std::function<void(int)> m_on_exit;
  u32 m_last = 0;
};

}  // namespace reel
