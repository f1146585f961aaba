#pragma once

// Every piece of machine state has one templated `serialize(Archive&)` with
// named fields. The same function feeds snapshots (binary), state hashes
// (xxHash3 of the binary archive) and the JSON dump that `reel diff` reads.

#include <cereal/archives/binary.hpp>
#include <cereal/archives/json.hpp>
#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

namespace reel {

using BinaryOut = cereal::BinaryOutputArchive;
using BinaryIn = cereal::BinaryInputArchive;
using JsonOut = cereal::JSONOutputArchive;

// Field names in dumps drop the `m_` member prefix: `isr`, not `m_isr`.
constexpr const char* strip_member_prefix(const char* name) {
  return (name[0] == 'm' && name[1] == '_') ? name + 2 : name;
}

}  // namespace reel

#define REEL_FIELD(x) ::cereal::make_nvp(::reel::strip_member_prefix(#x), x)

// Forwards the three archive kinds to the class's template serialize(). Put
// it in the public section of every Device subclass.
#define REEL_DEVICE_STATE                                             \
  void save_state(::reel::BinaryOut& ar) override { serialize(ar); } \
  void load_state(::reel::BinaryIn& ar) override { serialize(ar); }  \
  void dump_state(::reel::JsonOut& ar) override { serialize(ar); }

// The same for components that are not bus devices (hubs, backends).
#define REEL_COMPONENT_STATE REEL_DEVICE_STATE
