#pragma once

#include <deque>
#include <string>
#include <vector>

#include "core/component.h"
#include "core/frame_port.h"
#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

// One VLAN: a repeating hub. A frame sent by one port reaches every other
// port, in the order the ports were attached (which the harness derives
// from the command line, so it is the same in every run).
class Hub : public Component, public FrameSwitch {
 public:
  explicit Hub(unsigned vlan) : Component("vlan." + std::to_string(vlan)), m_vlan(vlan) {}

  void reset() override {}
  REEL_COMPONENT_STATE

  unsigned vlan() const { return m_vlan; }

  // `name` identifies the port in `info network` ("ne2k_pci.0", "user.0").
  void attach(FramePort& port, std::string name);
  void forward(FramePort& from, std::span<const u8> frame) override;

  struct PortEntry {
    FramePort* port;
    std::string name;
  };
  const std::vector<PortEntry>& ports() const { return m_ports; }

  u64 frames_forwarded() const { return m_frames; }
  u64 frames_dropped() const { return m_dropped; }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_frames), REEL_FIELD(m_bytes), REEL_FIELD(m_dropped));
  }

 private:
  struct Pending {
    FramePort* from;
    std::vector<u8> frame;
  };
  void deliver(FramePort& from, std::span<const u8> frame);

  unsigned m_vlan;
  std::vector<PortEntry> m_ports;
  // Frames sent from inside a delivery wait here, so no port is re-entered
  // while it is handling a frame. Empty between instructions, so not state.
  std::deque<Pending> m_pending;
  bool m_delivering = false;
  u64 m_frames = 0;
  u64 m_bytes = 0;
  u64 m_dropped = 0;
};

}  // namespace reel
