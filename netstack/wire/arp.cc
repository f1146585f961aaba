#include "netstack/wire/arp.h"

#include <algorithm>

#include "netstack/wire/checksum.h"

namespace reel::wire {

std::string_view to_string(ArpError error) {
  switch (error) {
    case ArpError::none:
      return "none";
    case ArpError::too_short:
      return "too_short";
    case ArpError::unsupported:
      return "unsupported";
    case ArpError::bad_operation:
      return "bad_operation";
  }
  return "unknown";
}

ArpPacket::Parsed ArpPacket::parse(std::span<const u8> bytes) {
  if (bytes.size() < kArpPacketSize) return {std::nullopt, ArpError::too_short};
  if (load_be16(&bytes[0]) != 1 || load_be16(&bytes[2]) != 0x0800 || bytes[4] != 6 || bytes[5] != 4) {
    return {std::nullopt, ArpError::unsupported};
  }
  const u16 op = load_be16(&bytes[6]);
  if (op != static_cast<u16>(ArpOperation::request) && op != static_cast<u16>(ArpOperation::reply)) {
    return {std::nullopt, ArpError::bad_operation};
  }
  ArpFields f;
  f.operation = static_cast<ArpOperation>(op);
  std::copy_n(bytes.begin() + 8, 6, f.sender_mac.begin());
  f.sender_ip = load_be32(&bytes[14]);
  std::copy_n(bytes.begin() + 18, 6, f.target_mac.begin());
  f.target_ip = load_be32(&bytes[24]);
  return {ArpPacket(f), ArpError::none};
}

std::optional<std::size_t> build_arp(std::span<u8> out, const ArpFields& f) {
  if (out.size() < kArpPacketSize) return std::nullopt;
  store_be16(&out[0], 1);
  store_be16(&out[2], 0x0800);
  out[4] = 6;
  out[5] = 4;
  store_be16(&out[6], static_cast<u16>(f.operation));
  std::copy(f.sender_mac.begin(), f.sender_mac.end(), out.begin() + 8);
  store_be32(&out[14], f.sender_ip);
  std::copy(f.target_mac.begin(), f.target_mac.end(), out.begin() + 18);
  store_be32(&out[24], f.target_ip);
  return kArpPacketSize;
}

}  // namespace reel::wire
