#pragma once

// ARP (RFC 826) for Ethernet and IPv4 only: hardware type 1, protocol type
// 0x0800, address lengths 6 and 4. Anything else is refused as unsupported.

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "core/types.h"
#include "netstack/wire/ethernet.h"

namespace reel::wire {

inline constexpr std::size_t kArpPacketSize = 28;

enum class ArpOperation : u16 { request = 1, reply = 2 };

enum class ArpError : u8 {
  none,
  too_short,      // shorter than the 28-byte Ethernet/IPv4 packet
  unsupported,    // not hardware 1 / protocol 0x0800 / lengths 6 and 4
  bad_operation,  // neither request nor reply
};

std::string_view to_string(ArpError error);

// Addresses are host-order u32 (10.0.2.2 is 0x0a000202).
struct ArpFields {
  ArpOperation operation = ArpOperation::request;
  MacAddress sender_mac{};
  u32 sender_ip = 0;
  MacAddress target_mac{};
  u32 target_ip = 0;
};

class ArpPacket {
 public:
  struct Parsed;  // the view, or why there is none (defined below)
  // `bytes` is the Ethernet payload; trailing padding is allowed.
  static Parsed parse(std::span<const u8> bytes);

  ArpOperation operation() const { return m_fields.operation; }
  const MacAddress& sender_mac() const { return m_fields.sender_mac; }
  u32 sender_ip() const { return m_fields.sender_ip; }
  const MacAddress& target_mac() const { return m_fields.target_mac; }
  u32 target_ip() const { return m_fields.target_ip; }
  const ArpFields& fields() const { return m_fields; }

 private:
  explicit ArpPacket(const ArpFields& fields) : m_fields(fields) {}
  ArpFields m_fields;
};

struct ArpPacket::Parsed {
  std::optional<ArpPacket> packet;
  ArpError error = ArpError::none;
  explicit operator bool() const { return packet.has_value(); }
  const ArpPacket& operator*() const { return *packet; }
  const ArpPacket* operator->() const { return &*packet; }
};

// Writes the 28-byte packet (no Ethernet header). nullopt when out is too small.
std::optional<std::size_t> build_arp(std::span<u8> out, const ArpFields& fields);

}  // namespace reel::wire
