#include "devices/system_control_port.h"

#include "core/port_bus.h"

namespace reel {

void SystemControlPort::map_into(PortBus& ports) { ports.map(0x92, 1, this); }

}  // namespace reel
