#pragma once

// TCP segments (RFC 9293): header, flags, data offset, the pseudo-header
// checksum, and options parsed into TcpOptions: MSS (RFC 9293 3.2),
// window scale and timestamps (RFC 7323), SACK-permitted and SACK blocks
// (RFC 2018). Unknown options are skipped by their length; an option whose
// length is < 2, runs past the header, or does not match its kind's fixed
// size is refused, so a view never holds a half-understood option list.

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "core/types.h"

namespace reel::wire {

class Ipv4Packet;

inline constexpr std::size_t kTcpMinHeaderSize = 20;
inline constexpr std::size_t kTcpMaxOptionsSize = 40;
inline constexpr std::size_t kTcpMaxSackBlocks = 4;

// The flag bits of header byte 13.
enum TcpFlag : u8 {
  kTcpFin = 0x01,
  kTcpSyn = 0x02,
  kTcpRst = 0x04,
  kTcpPsh = 0x08,
  kTcpAck = 0x10,
  kTcpUrg = 0x20,
  kTcpEce = 0x40,
  kTcpCwr = 0x80,
};

enum class TcpError : u8 {
  none,
  too_short,        // shorter than 20 bytes
  bad_data_offset,  // data offset < 5, or the header runs past the bytes given
  bad_option,       // malformed option list
  bad_checksum,     // pseudo-header checksum wrong
  fragmented,       // the IPv4 packet is a fragment (reassemble first)
  not_tcp,          // the IPv4 protocol is not 6
};

std::string_view to_string(TcpError error);

struct TcpTimestamps {
  u32 value = 0;
  u32 echo_reply = 0;
  bool operator==(const TcpTimestamps&) const = default;
};

struct TcpSackBlock {
  u32 left = 0;
  u32 right = 0;
  bool operator==(const TcpSackBlock&) const = default;
};

struct TcpOptions {
  std::optional<u16> mss;
  // As sent; RFC 7323 2.3 says a receiver uses 14 for anything larger,
  // which is the endpoint's business, not the parser's.
  std::optional<u8> window_scale;
  bool sack_permitted = false;
  std::optional<TcpTimestamps> timestamps;
  u8 sack_block_count = 0;
  std::array<TcpSackBlock, kTcpMaxSackBlocks> sack_blocks{};
  u8 unknown_count = 0;  // options skipped by length (saturates at 255)

  std::span<const TcpSackBlock> sacks() const { return std::span(sack_blocks).first(sack_block_count); }
  bool operator==(const TcpOptions&) const = default;
};

// Parses an option list (the bytes between the 20-byte header and the data).
// nullopt when it is malformed.
std::optional<TcpOptions> parse_tcp_options(std::span<const u8> bytes);

// Encodes `options` (Linux's order: MSS, SACK-permitted + timestamps, window
// scale, SACK blocks; NOPs align to 4 bytes). nullopt when they need more
// than `out` or 40 bytes. unknown_count is ignored.
std::optional<std::size_t> encode_tcp_options(std::span<u8> out, const TcpOptions& options);

class TcpSegment {
 public:
  struct Parsed;  // the view, or why there is none (defined below)
  // `bytes` is the whole IP payload (its length feeds the pseudo-header).
  static Parsed parse(std::span<const u8> bytes, u32 source_ip, u32 destination_ip);
  // The payload of an unfragmented IPv4 packet with protocol 6.
  static Parsed parse(const Ipv4Packet& packet);

  u16 source_port() const;
  u16 destination_port() const;
  u32 sequence() const;
  u32 acknowledgment() const;
  std::size_t header_length() const { return m_header_length; }  // data offset * 4
  u8 flags() const { return m_bytes[13]; }
  bool has(TcpFlag flag) const { return (flags() & flag) != 0; }
  u16 window() const;
  u16 checksum() const;
  u16 urgent_pointer() const;
  const TcpOptions& options() const { return m_options; }
  std::span<const u8> option_bytes() const {
    return m_bytes.subspan(kTcpMinHeaderSize, m_header_length - kTcpMinHeaderSize);
  }
  std::span<const u8> payload() const { return m_bytes.subspan(m_header_length); }
  // Sequence space the segment occupies: data plus one each for SYN and FIN.
  u32 sequence_length() const;
  std::span<const u8> bytes() const { return m_bytes; }

 private:
  TcpSegment(std::span<const u8> bytes, std::size_t header_length, const TcpOptions& options)
      : m_bytes(bytes), m_header_length(header_length), m_options(options) {}
  std::span<const u8> m_bytes;
  std::size_t m_header_length;
  TcpOptions m_options;
};

struct TcpSegment::Parsed {
  std::optional<TcpSegment> segment;
  TcpError error = TcpError::none;
  explicit operator bool() const { return segment.has_value(); }
  const TcpSegment& operator*() const { return *segment; }
  const TcpSegment* operator->() const { return &*segment; }
};

struct TcpFields {
  u16 source_port = 0;
  u16 destination_port = 0;
  u32 sequence = 0;
  u32 acknowledgment = 0;
  u8 flags = 0;
  u16 window = 0;
  u16 urgent_pointer = 0;
  TcpOptions options;
};

// Writes header, options and checksum and copies `payload` (which may
// already sit in place after the options: use tcp_header_length() to find
// where). nullopt when out is too small, the options do not fit, or the
// segment would exceed 65535 bytes.
std::optional<std::size_t> build_tcp(std::span<u8> out, u32 source_ip, u32 destination_ip,
                                     const TcpFields& fields, std::span<const u8> payload);

// The header length build_tcp() will use for these options (nullopt when
// they do not fit in 40 bytes).
std::optional<std::size_t> tcp_header_length(const TcpOptions& options);

}  // namespace reel::wire
