#include "netstack/wire/ethernet.h"

#include <algorithm>
#include <cstring>

#include "netstack/wire/checksum.h"

namespace reel::wire {

std::string_view to_string(EthernetError error) {
  switch (error) {
    case EthernetError::none:
      return "none";
    case EthernetError::too_short:
      return "too_short";
    case EthernetError::not_ethernet_ii:
      return "not_ethernet_ii";
    case EthernetError::stacked_vlan:
      return "stacked_vlan";
  }
  return "unknown";
}

EthernetFrame::Parsed EthernetFrame::parse(std::span<const u8> bytes) {
  if (bytes.size() < kEthernetHeaderSize) return {std::nullopt, EthernetError::too_short};
  u16 type = load_be16(&bytes[12]);
  std::size_t header = kEthernetHeaderSize;
  u16 tci = 0;
  if (type == static_cast<u16>(EtherType::qinq)) return {std::nullopt, EthernetError::stacked_vlan};
  if (type == static_cast<u16>(EtherType::vlan)) {
    if (bytes.size() < kEthernetHeaderSize + kVlanTagSize) return {std::nullopt, EthernetError::too_short};
    tci = load_be16(&bytes[14]);
    type = load_be16(&bytes[16]);
    header += kVlanTagSize;
    if (type == static_cast<u16>(EtherType::vlan) || type == static_cast<u16>(EtherType::qinq)) {
      return {std::nullopt, EthernetError::stacked_vlan};
    }
  }
  if (type < 0x0600) return {std::nullopt, EthernetError::not_ethernet_ii};
  return {EthernetFrame(bytes, header, type, tci), EthernetError::none};
}

MacAddress EthernetFrame::destination() const {
  MacAddress mac;
  std::copy_n(m_bytes.begin(), 6, mac.begin());
  return mac;
}

MacAddress EthernetFrame::source() const {
  MacAddress mac;
  std::copy_n(m_bytes.begin() + 6, 6, mac.begin());
  return mac;
}

void place_payload(std::span<u8> out, std::size_t offset, std::span<const u8> payload) {
  if (payload.empty() || payload.data() == out.data() + offset) return;
  // memmove: the payload may overlap the destination (built in the same buffer).
  std::memmove(out.data() + offset, payload.data(), payload.size());
}

std::optional<std::size_t> build_ethernet(std::span<u8> out, const MacAddress& destination,
                                          const MacAddress& source, u16 ether_type,
                                          std::span<const u8> payload) {
  const std::size_t total = kEthernetHeaderSize + payload.size();
  if (out.size() < total) return std::nullopt;
  place_payload(out, kEthernetHeaderSize, payload);
  std::copy(destination.begin(), destination.end(), out.begin());
  std::copy(source.begin(), source.end(), out.begin() + 6);
  store_be16(&out[12], ether_type);
  return total;
}

}  // namespace reel::wire
