#include "netstack/wire/udp.h"

#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/ipv4.h"

namespace reel::wire {

std::string_view to_string(UdpError error) {
  switch (error) {
    case UdpError::none:
      return "none";
    case UdpError::too_short:
      return "too_short";
    case UdpError::bad_length:
      return "bad_length";
    case UdpError::bad_checksum:
      return "bad_checksum";
    case UdpError::fragmented:
      return "fragmented";
    case UdpError::not_udp:
      return "not_udp";
  }
  return "unknown";
}

UdpDatagram::Parsed UdpDatagram::parse(std::span<const u8> bytes, u32 source_ip, u32 destination_ip) {
  if (bytes.size() < kUdpHeaderSize) return {std::nullopt, UdpError::too_short};
  const std::size_t length = load_be16(&bytes[4]);
  if (length < kUdpHeaderSize || length > bytes.size()) return {std::nullopt, UdpError::bad_length};
  const auto datagram = bytes.first(length);
  if (load_be16(&bytes[6]) != 0) {
    InternetChecksum c;
    c.add_ipv4_pseudo_header(source_ip, destination_ip, static_cast<u8>(IpProtocol::udp),
                             static_cast<u16>(length));
    c.add(datagram);
    if (c.sum() != 0xffff) return {std::nullopt, UdpError::bad_checksum};
  }
  return {UdpDatagram(datagram), UdpError::none};
}

UdpDatagram::Parsed UdpDatagram::parse(const Ipv4Packet& packet) {
  if (packet.protocol() != static_cast<u8>(IpProtocol::udp)) return {std::nullopt, UdpError::not_udp};
  if (packet.is_fragment()) return {std::nullopt, UdpError::fragmented};
  return parse(packet.payload(), packet.source(), packet.destination());
}

u16 UdpDatagram::source_port() const { return load_be16(&m_bytes[0]); }
u16 UdpDatagram::destination_port() const { return load_be16(&m_bytes[2]); }
u16 UdpDatagram::checksum() const { return load_be16(&m_bytes[6]); }

std::optional<std::size_t> build_udp(std::span<u8> out, u32 source_ip, u32 destination_ip, u16 source_port,
                                     u16 destination_port, std::span<const u8> payload) {
  const std::size_t total = kUdpHeaderSize + payload.size();
  if (total > 0xffff || out.size() < total) return std::nullopt;
  place_payload(out, kUdpHeaderSize, payload);
  store_be16(&out[0], source_port);
  store_be16(&out[2], destination_port);
  store_be16(&out[4], static_cast<u16>(total));
  store_be16(&out[6], 0);
  InternetChecksum c;
  c.add_ipv4_pseudo_header(source_ip, destination_ip, static_cast<u8>(IpProtocol::udp),
                           static_cast<u16>(total));
  c.add(out.first(total));
  const u16 sum = c.checksum();
  store_be16(&out[6], sum == 0 ? 0xffff : sum);
  return total;
}

}  // namespace reel::wire
