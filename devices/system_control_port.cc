#include "devices/system_control_port.h"

#include <utility>

#include "core/port_bus.h"

namespace reel {

SystemControlPort::SystemControlPort(std::function<void()> on_reset)
    : Device("port92"), m_on_reset(std::move(on_reset)) {}

void SystemControlPort::map_into(PortBus& ports) { ports.map(kPort, 1, this); }

u32 SystemControlPort::read(u32, unsigned size) {
  // Only bits 0 and 1 are implemented; a wider access sees floating lanes.
  const u32 upper = size == 1 ? 0 : size == 2 ? 0xff00u : 0xffffff00u;
  return upper | m_value;
}

void SystemControlPort::write(u32, unsigned, u32 value) {
  const u8 old = m_value;
  m_value = static_cast<u8>(value & 0x03);
  // Only a 0 -> 1 transition of bit 0 resets, so rewriting the register
  // with the reset bit still set (read-modify-write of A20) does not.
  if ((m_value & 0x01) && !(old & 0x01) && m_on_reset) m_on_reset();
}

}  // namespace reel
