#pragma once

#include <string>
#include <utility>

#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

// A named piece of machine state: a device, a hub, a network backend, the
// user-mode gateway. The Machine serializes, hashes and resets components
// in the order they were added (DESIGN.md, determinism rule 6).
class Component {
 public:
  explicit Component(std::string name) : m_name(std::move(name)) {}
  virtual ~Component() = default;
  Component(const Component&) = delete;
  Component& operator=(const Component&) = delete;

  // Instance name used in state dumps and divergence reports ("pic.0").
  const std::string& name() const { return m_name; }

  // Machine reset (power-on, triple-fault reboot).
  virtual void reset() = 0;

  virtual void save_state(BinaryOut& ar) = 0;
  virtual void load_state(BinaryIn& ar) = 0;
  virtual void dump_state(JsonOut& ar) = 0;

 private:
  std::string m_name;
};

}  // namespace reel
