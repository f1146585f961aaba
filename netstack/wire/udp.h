#pragma once

// UDP datagrams (RFC 768): length checked against the bytes given, the
// pseudo-header checksum verified unless it is 0 (no checksum, allowed on
// input over IPv4) and always computed on output.

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "core/types.h"

namespace reel::wire {

class Ipv4Packet;

inline constexpr std::size_t kUdpHeaderSize = 8;

enum class UdpError : u8 {
  none,
  too_short,     // shorter than the 8-byte header
  bad_length,    // length field < 8 or > the bytes given
  bad_checksum,  // non-zero checksum that does not verify
  fragmented,    // the IPv4 packet is a fragment (reassemble first)
  not_udp,       // the IPv4 protocol is not 17
};

std::string_view to_string(UdpError error);

class UdpDatagram {
 public:
  struct Parsed;  // the view, or why there is none (defined below)
  // `bytes` is the IP payload; source and destination (host order) feed
  // the pseudo-header. Bytes past the length field are ignored.
  static Parsed parse(std::span<const u8> bytes, u32 source_ip, u32 destination_ip);
  // The payload of an unfragmented IPv4 packet with protocol 17.
  static Parsed parse(const Ipv4Packet& packet);

  u16 source_port() const;
  u16 destination_port() const;
  u16 length() const { return static_cast<u16>(m_bytes.size()); }
  u16 checksum() const;
  bool has_checksum() const { return checksum() != 0; }
  std::span<const u8> payload() const { return m_bytes.subspan(kUdpHeaderSize); }
  std::span<const u8> bytes() const { return m_bytes; }

 private:
  explicit UdpDatagram(std::span<const u8> bytes) : m_bytes(bytes) {}
  std::span<const u8> m_bytes;
};

struct UdpDatagram::Parsed {
  std::optional<UdpDatagram> datagram;
  UdpError error = UdpError::none;
  explicit operator bool() const { return datagram.has_value(); }
  const UdpDatagram& operator*() const { return *datagram; }
  const UdpDatagram* operator->() const { return &*datagram; }
};

// Writes header and checksum and copies `payload` (which may already sit at
// out[8..]). A computed checksum of 0 is sent as 0xffff (RFC 768). nullopt
// when out is too small or the datagram would exceed 65535 bytes.
std::optional<std::size_t> build_udp(std::span<u8> out, u32 source_ip, u32 destination_ip, u16 source_port,
                                     u16 destination_port, std::span<const u8> payload);

}  // namespace reel::wire
