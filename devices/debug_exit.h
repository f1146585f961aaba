#pragma once

#include <functional>

#include "core/device.h"

namespace reel {

// QEMU's isa-debug-exit: a guest write of V ends the run with exit status
// (V << 1) | 1. Reads return 0, as in QEMU.
class DebugExit : public Device {
 public:
  explicit DebugExit(std::function<void(int status)> on_exit) : Device("isa-debug-exit"), m_on_exit(std::move(on_exit)) {}

  void reset() override {}
  u32 read(u32, unsigned) override { return 0; }
  void write(u32, unsigned, u32 value) override {
    m_last = value;
    m_on_exit(static_cast<int>(((value << 1) | 1) & 0xff));
  }

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
