#pragma once

// Ethernet II frames (without preamble or FCS), aware of one 802.1Q tag:
// a single tag is recognised and skipped (its VLAN id and priority are kept),
// stacked tags (802.1ad/QinQ) and 802.3 length-field frames are refused.

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "core/types.h"

namespace reel::wire {

using MacAddress = std::array<u8, 6>;

inline constexpr MacAddress kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
inline constexpr std::size_t kEthernetHeaderSize = 14;
inline constexpr std::size_t kVlanTagSize = 4;

enum class EtherType : u16 {
  ipv4 = 0x0800,
  arp = 0x0806,
  vlan = 0x8100,  // 802.1Q tag
  qinq = 0x88a8,  // 802.1ad service tag
  ipv6 = 0x86dd,
};

enum class EthernetError : u8 {
  none,
  too_short,        // shorter than the 14-byte header, or a tag cut short
  not_ethernet_ii,  // type field < 0x0600: an 802.3 length, not an EtherType
  stacked_vlan,     // a tag inside a tag, or an 802.1ad service tag
};

std::string_view to_string(EthernetError error);

class EthernetFrame {
 public:
  struct Parsed;  // the view, or why there is none (defined below)
  // `bytes` must outlive the view.
  static Parsed parse(std::span<const u8> bytes);

  MacAddress destination() const;
  MacAddress source() const;
  // The EtherType after the tag, if any.
  u16 ether_type() const { return m_ether_type; }
  bool has_vlan_tag() const { return m_header_size != kEthernetHeaderSize; }
  // The tag control information (0 when untagged): PCP, DEI, VID.
  u16 vlan_tci() const { return m_tci; }
  u16 vlan_id() const { return m_tci & 0x0fff; }
  u8 vlan_priority() const { return static_cast<u8>(m_tci >> 13); }
  bool is_broadcast() const { return destination() == kBroadcastMac; }
  bool is_multicast() const { return (m_bytes[0] & 1) != 0; }  // includes broadcast

  std::size_t header_size() const { return m_header_size; }
  // Everything after the header, including any padding to the 60-byte minimum.
  std::span<const u8> payload() const { return m_bytes.subspan(m_header_size); }
  std::span<const u8> bytes() const { return m_bytes; }

 private:
  EthernetFrame(std::span<const u8> bytes, std::size_t header_size, u16 ether_type, u16 tci)
      : m_bytes(bytes), m_header_size(header_size), m_ether_type(ether_type), m_tci(tci) {}
  std::span<const u8> m_bytes;
  std::size_t m_header_size;
  u16 m_ether_type;
  u16 m_tci;
};

struct EthernetFrame::Parsed {
  std::optional<EthernetFrame> frame;
  EthernetError error = EthernetError::none;
  explicit operator bool() const { return frame.has_value(); }
  const EthernetFrame& operator*() const { return *frame; }
  const EthernetFrame* operator->() const { return &*frame; }
};

// Writes an untagged header and copies `payload` after it (the payload may
// already sit in place at out[14..]). No padding is added: a NIC pads short
// frames itself. nullopt when `out` is too small.
std::optional<std::size_t> build_ethernet(std::span<u8> out, const MacAddress& destination,
                                          const MacAddress& source, u16 ether_type,
                                          std::span<const u8> payload);

// Copies `payload` to `out` at `offset` unless it is already there. The
// builders use it so a caller can assemble a frame inside-out in one buffer.
// The caller has checked that out has room.
void place_payload(std::span<u8> out, std::size_t offset, std::span<const u8> payload);

}  // namespace reel::wire
