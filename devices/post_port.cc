#include "devices/post_port.h"

#include "core/port_bus.h"

namespace reel {

void PostPort::map_into(PortBus& ports) { ports.map(kPort, 1, this); }

// A wider access only reaches this one-byte port with its low byte; the
// other lanes belong to ports 0x81-0x83 (DMA page registers, unmapped).
u32 PostPort::read(u32, unsigned size) {
  return size == 1 ? m_code : (0xffffff00u & ((size == 2) ? 0xffffu : 0xffffffffu)) | m_code;
}

void PostPort::write(u32, unsigned, u32 value) { m_code = static_cast<u8>(value); }

}  // namespace reel
