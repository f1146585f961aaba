#include "netstack/wire/icmp.h"

#include <algorithm>

#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/ipv4.h"

namespace reel::wire {

std::string_view to_string(IcmpError error) {
  switch (error) {
    case IcmpError::none:
      return "none";
    case IcmpError::too_short:
      return "too_short";
    case IcmpError::bad_checksum:
      return "bad_checksum";
  }
  return "unknown";
}

IcmpMessage::Parsed IcmpMessage::parse(std::span<const u8> bytes) {
  if (bytes.size() < kIcmpHeaderSize) return {std::nullopt, IcmpError::too_short};
  if (!internet_checksum_ok(bytes)) return {std::nullopt, IcmpError::bad_checksum};
  return {IcmpMessage(bytes), IcmpError::none};
}

u16 IcmpMessage::checksum() const { return load_be16(&m_bytes[2]); }
u32 IcmpMessage::rest_of_header() const { return load_be32(&m_bytes[4]); }
u16 IcmpMessage::identifier() const { return load_be16(&m_bytes[4]); }
u16 IcmpMessage::sequence() const { return load_be16(&m_bytes[6]); }
u16 IcmpMessage::next_hop_mtu() const { return load_be16(&m_bytes[6]); }

namespace {

std::optional<std::size_t> build_icmp(std::span<u8> out, u8 type, u8 code, u32 rest,
                                      std::span<const u8> body) {
  const std::size_t total = kIcmpHeaderSize + body.size();
  if (out.size() < total) return std::nullopt;
  place_payload(out, kIcmpHeaderSize, body);
  out[0] = type;
  out[1] = code;
  store_be16(&out[2], 0);
  store_be32(&out[4], rest);
  store_be16(&out[2], internet_checksum(out.first(total)));
  return total;
}

}  // namespace

std::optional<std::size_t> build_icmp_echo(std::span<u8> out, IcmpType type, u16 identifier, u16 sequence,
                                           std::span<const u8> data) {
  return build_icmp(out, static_cast<u8>(type), 0, (u32{identifier} << 16) | sequence, data);
}

std::optional<std::size_t> build_icmp_error(std::span<u8> out, u8 type, u8 code, u32 rest_of_header,
                                            std::span<const u8> original) {
  return build_icmp(out, type, code, rest_of_header, original);
}

std::span<const u8> icmp_error_quote(const Ipv4Packet& packet, std::size_t data_bytes) {
  const std::size_t quoted = packet.header_length() + std::min(data_bytes, packet.payload().size());
  return packet.bytes().first(quoted);
}

}  // namespace reel::wire
