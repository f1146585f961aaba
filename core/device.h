#pragma once

#include <string>
#include <utility>

#include "core/component.h"

namespace reel {

// One device is one class. It only sees offsets inside the ranges the bus
// mapped for it; the bus owns the address map.
class Device : public Component {
 public:
  using Component::Component;

  // size is 1, 2 or 4. Reads of unimplemented registers return all-ones or
  // whatever the hardware returns; never assert on guest-controlled values.
  virtual u32 read(u32 offset, unsigned size) = 0;
  virtual void write(u32 offset, unsigned size, u32 value) = 0;
};

}  // namespace reel
