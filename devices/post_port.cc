#include "devices/post_port.h"

#include "core/port_bus.h"

namespace reel {

void PostPort::map_into(PortBus& ports) { ports.map(0x80, 1, this); }

}  // namespace reel
