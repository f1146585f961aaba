#pragma once

#include <span>
#include <string>

#include "core/types.h"

namespace reel {

class FramePort;

// Where a port's transmitted frames go: a VLAN hub (netstack/hub.h). Devices
// and netstack meet only here (DESIGN.md, layers).
class FrameSwitch {
 public:
  virtual ~FrameSwitch() = default;
  // `from` sent `frame` (a whole Ethernet frame without preamble or FCS).
  // The switch copies what it keeps; the span need not outlive the call.
  virtual void forward(FramePort& from, std::span<const u8> frame) = 0;
};

// One port on a hub: a NIC, a socket backend, the user-mode gateway, a pcap
// dump. Frames arrive through receive_frame(); the port sends through
// transmit(). Delivery is synchronous and deterministic: a hub never calls
// receive_frame() on the port that sent the frame, and frames sent from
// inside a receive_frame() are queued by the hub and delivered after the
// outer frame has reached every port.
class FramePort {
 public:
  virtual ~FramePort() = default;

  // A frame from the network. The port copies what it keeps. A port that
  // cannot take it (ring full, link down) drops and counts it itself.
  virtual void receive_frame(std::span<const u8> frame) = 0;

  // One line for `info network`, e.g. "model=ne2k_pci,macaddr=52:54:00:12:34:56".
  virtual std::string describe_port() const = 0;

  void attach_switch(FrameSwitch* sw) { m_switch = sw; }
  FrameSwitch* frame_switch() const { return m_switch; }

 protected:
  // Sends a frame to every other port of the hub (nothing when unattached).
  void transmit(std::span<const u8> frame) {
    if (m_switch) m_switch->forward(*this, frame);
  }

 private:
  FrameSwitch* m_switch = nullptr;
};

// Ethernet limits every port applies to frames it is given (without FCS).
inline constexpr size_t kEthMinFrame = 14;        // a header, nothing else
inline constexpr size_t kEthMaxFrame = 1514;      // 1500 payload + header
inline constexpr size_t kEthMaxVlanFrame = 1518;  // with one 802.1Q tag

}  // namespace reel
