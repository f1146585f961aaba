#pragma once

// IPv4 headers (RFC 791): version, IHL, total length, fragment fields,
// options and the header checksum, all checked before a view exists. The
// view keeps fragments whole (is_fragment() says so) so that a reassembler
// can sit on top; it never reads past total_length, so Ethernet padding
// after the datagram is ignored.

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "core/types.h"

namespace reel::wire {

inline constexpr std::size_t kIpv4MinHeaderSize = 20;
inline constexpr std::size_t kIpv4MaxHeaderSize = 60;
inline constexpr std::size_t kIpv4MaxOptionsSize = 40;

enum class IpProtocol : u8 { icmp = 1, tcp = 6, udp = 17 };

enum class Ipv4Error : u8 {
  none,
  too_short,     // fewer than 20 bytes, or fewer than IHL*4
  bad_version,   // version field != 4
  bad_ihl,       // IHL < 5
  bad_length,    // total length < IHL*4, or > the bytes given
  bad_checksum,  // header checksum wrong
  bad_option,    // an option's length is < 2 or runs past the header
};

std::string_view to_string(Ipv4Error error);

// Addresses are host-order u32 (10.0.2.15 is 0x0a00020f).
class Ipv4Packet {
 public:
  struct Parsed;  // the view, or why there is none (defined below)
  // `bytes` is the Ethernet payload (trailing padding allowed); it must
  // outlive the view.
  static Parsed parse(std::span<const u8> bytes);

  std::size_t header_length() const { return m_header_length; }  // bytes, IHL*4
  u8 tos() const { return m_bytes[1]; }
  u8 dscp() const { return static_cast<u8>(m_bytes[1] >> 2); }
  u8 ecn() const { return m_bytes[1] & 3; }
  u16 total_length() const { return static_cast<u16>(m_bytes.size()); }
  u16 identification() const;
  bool reserved_flag() const { return (m_bytes[6] & 0x80) != 0; }
  bool dont_fragment() const { return (m_bytes[6] & 0x40) != 0; }
  bool more_fragments() const { return (m_bytes[6] & 0x20) != 0; }
  // In 8-byte units as on the wire; fragment_offset_bytes() multiplies.
  u16 fragment_offset() const;
  u32 fragment_offset_bytes() const { return u32{fragment_offset()} * 8; }
  // MF set or a non-zero offset: the payload is only part of a datagram.
  bool is_fragment() const { return more_fragments() || fragment_offset() != 0; }
  u8 ttl() const { return m_bytes[8]; }
  u8 protocol() const { return m_bytes[9]; }
  u16 header_checksum() const;
  u32 source() const;
  u32 destination() const;

  std::span<const u8> options() const { return m_bytes.subspan(kIpv4MinHeaderSize, m_header_length - 20); }
  std::span<const u8> header() const { return m_bytes.first(m_header_length); }
  std::span<const u8> payload() const { return m_bytes.subspan(m_header_length); }
  // The datagram: exactly total_length bytes.
  std::span<const u8> bytes() const { return m_bytes; }

 private:
  Ipv4Packet(std::span<const u8> bytes, std::size_t header_length)
      : m_bytes(bytes), m_header_length(header_length) {}
  std::span<const u8> m_bytes;
  std::size_t m_header_length;
};

struct Ipv4Packet::Parsed {
  std::optional<Ipv4Packet> packet;
  Ipv4Error error = Ipv4Error::none;
  explicit operator bool() const { return packet.has_value(); }
  const Ipv4Packet& operator*() const { return *packet; }
  const Ipv4Packet* operator->() const { return &*packet; }
};

struct Ipv4Fields {
  u8 tos = 0;
  u16 identification = 0;
  bool dont_fragment = false;
  bool more_fragments = false;
  u16 fragment_offset = 0;  // 8-byte units, < 8192
  u8 ttl = 64;
  u8 protocol = 0;
  u32 source = 0;
  u32 destination = 0;
  // Raw option bytes, already padded by the caller to a multiple of 4, at most 40.
  std::span<const u8> options;
};

// Writes the header (with checksum) and copies `payload` after it; the
// payload may already sit in place at out[20 + options.size()..]. nullopt
// when `out` is too small, the options are not a multiple of 4 or longer
// than 40 bytes, the fragment offset does not fit 13 bits, or the datagram
// would exceed 65535 bytes.
std::optional<std::size_t> build_ipv4(std::span<u8> out, const Ipv4Fields& fields,
                                      std::span<const u8> payload);

}  // namespace reel::wire
