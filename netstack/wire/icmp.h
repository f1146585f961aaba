#pragma once

// ICMP messages (RFC 792): the 8-byte header every message has, with the
// checksum verified over the whole message. Echo request/reply, destination
// unreachable and time exceeded have named accessors; other types parse as
// a generic header and body.

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "core/types.h"

namespace reel::wire {

class Ipv4Packet;

inline constexpr std::size_t kIcmpHeaderSize = 8;

enum class IcmpType : u8 {
  echo_reply = 0,
  destination_unreachable = 3,
  echo_request = 8,
  time_exceeded = 11,
};

// Destination unreachable codes (RFC 792, RFC 1191 for 4).
enum class IcmpUnreachableCode : u8 {
  net = 0,
  host = 1,
  protocol = 2,
  port = 3,
  fragmentation_needed = 4,
  source_route_failed = 5,
};

// Time exceeded codes.
enum class IcmpTimeExceededCode : u8 { ttl = 0, reassembly = 1 };

enum class IcmpError : u8 {
  none,
  too_short,     // shorter than the 8-byte header
  bad_checksum,  // the checksum over the whole message is wrong
};

std::string_view to_string(IcmpError error);

class IcmpMessage {
 public:
  struct Parsed;  // the view, or why there is none (defined below)
  // `bytes` is the whole message (an unfragmented IPv4 payload).
  static Parsed parse(std::span<const u8> bytes);

  u8 type() const { return m_bytes[0]; }
  u8 code() const { return m_bytes[1]; }
  u16 checksum() const;
  bool is_echo() const {
    return type() == static_cast<u8>(IcmpType::echo_request) ||
           type() == static_cast<u8>(IcmpType::echo_reply);
  }
  // Bytes 4..7, "rest of header": identifier and sequence for echo, unused
  // (zero) for time exceeded, next-hop MTU in the low half for
  // fragmentation needed. Readable for every type.
  u32 rest_of_header() const;
  u16 identifier() const;
  u16 sequence() const;
  u16 next_hop_mtu() const;
  // Echo: the data to return. Errors: the quoted IP header and leading data.
  std::span<const u8> body() const { return m_bytes.subspan(kIcmpHeaderSize); }
  std::span<const u8> bytes() const { return m_bytes; }

 private:
  explicit IcmpMessage(std::span<const u8> bytes) : m_bytes(bytes) {}
  std::span<const u8> m_bytes;
};

struct IcmpMessage::Parsed {
  std::optional<IcmpMessage> message;
  IcmpError error = IcmpError::none;
  explicit operator bool() const { return message.has_value(); }
  const IcmpMessage& operator*() const { return *message; }
  const IcmpMessage* operator->() const { return &*message; }
};

// Echo request or reply carrying `data` (which may already sit at out[8..]).
std::optional<std::size_t> build_icmp_echo(std::span<u8> out, IcmpType type, u16 identifier, u16 sequence,
                                           std::span<const u8> data);

// An error message (destination unreachable, time exceeded, ...) quoting
// `original` (see icmp_error_quote). `rest_of_header` is 0 except for
// fragmentation needed (the next-hop MTU).
std::optional<std::size_t> build_icmp_error(std::span<u8> out, u8 type, u8 code, u32 rest_of_header,
                                            std::span<const u8> original);

// What an error about `packet` quotes: its IP header and up to `data_bytes`
// of its payload (RFC 792: 64 bits; RFC 1812 4.3.2.3 allows more).
std::span<const u8> icmp_error_quote(const Ipv4Packet& packet, std::size_t data_bytes = 8);

}  // namespace reel::wire
