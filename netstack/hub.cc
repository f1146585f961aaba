#include "netstack/hub.h"

#include <cassert>

namespace reel {

namespace {
// More frames than this queued behind one delivery means ports are
// answering each other in a loop (two gateways on one VLAN, say); the
// excess is dropped and counted rather than growing without bound.
constexpr size_t kMaxPending = 1024;
// Anything larger is not an Ethernet frame any port could take (QEMU's
// socket backend caps frames at 69632 bytes; jumbo frames fit below this).
constexpr size_t kMaxFrame = 65536;
}  // namespace

void Hub::attach(FramePort& port, std::string name) {
  assert(port.frame_switch() == nullptr);
  port.attach_switch(this);
  m_ports.push_back(PortEntry{&port, std::move(name)});
}

void Hub::forward(FramePort& from, std::span<const u8> frame) {
  if (frame.empty() || frame.size() > kMaxFrame) {
    ++m_dropped;
    return;
  }
  if (m_delivering) {
    if (m_pending.size() >= kMaxPending) {
      ++m_dropped;
      return;
    }
    m_pending.push_back(Pending{&from, std::vector<u8>(frame.begin(), frame.end())});
    return;
  }
  m_delivering = true;
  deliver(from, frame);
  while (!m_pending.empty()) {
    Pending next = std::move(m_pending.front());
    m_pending.pop_front();
    deliver(*next.from, next.frame);
  }
  m_delivering = false;
}

void Hub::deliver(FramePort& from, std::span<const u8> frame) {
  ++m_frames;
  m_bytes += frame.size();
  for (const PortEntry& entry : m_ports) {
    if (entry.port != &from) entry.port->receive_frame(frame);
  }
}

}  // namespace reel
