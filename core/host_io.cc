#include "core/host_io.h"

namespace reel {

std::string format_ipv4(u32 ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 0xff) + "." +
         std::to_string((ip >> 8) & 0xff) + "." + std::to_string(ip & 0xff);
}

std::string format_socket_address(const SocketAddress& a) {
  return format_ipv4(a.ip) + ":" + std::to_string(a.port);
}

const char* socket_event_kind_name(SocketEvent::Kind kind) {
  switch (kind) {
    case SocketEvent::Kind::accepted:
      return "accepted";
    case SocketEvent::Kind::connected:
      return "connected";
    case SocketEvent::Kind::connect_failed:
      return "connect_failed";
    case SocketEvent::Kind::data:
      return "data";
    case SocketEvent::Kind::datagram:
      return "datagram";
    case SocketEvent::Kind::writable:
      return "writable";
    case SocketEvent::Kind::eof:
      return "eof";
    case SocketEvent::Kind::error:
      return "error";
  }
  return "unknown";
}

}  // namespace reel
