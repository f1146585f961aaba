#pragma once

#include <string>
#include <utility>

#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

// One device is one class. It only sees offsets inside the ranges the bus
// mapped for it; the bus owns the address map.
class Device {
 public:
  explicit Device(std::string name) : m_name(std::move(name)) {}
  virtual ~Device() = default;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Instance name used in state dumps and divergence reports ("pic.0").
  const std::string& name() const { return m_name; }

  virtual void reset() = 0;
  // size is 1, 2 or 4. Reads of unimplemented registers return all-ones or
  // whatever the hardware returns; never assert on guest-controlled values.
  virtual u32 read(u32 offset, unsigned size) = 0;
  virtual void write(u32 offset, unsigned size, u32 value) = 0;

  virtual void save_state(BinaryOut& ar) = 0;
  virtual void load_state(BinaryIn& ar) = 0;
  virtual void dump_state(JsonOut& ar) = 0;

 private:
  std::string m_name;
};

}  // namespace reel
