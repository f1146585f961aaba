#pragma once

// BOOTP/DHCP messages (RFC 951, 2131, 2132): a checked view over the fixed
// header and its options, and a builder for the server's replies.
//
// parse() walks every option once: pad (0) and end (255) are single bytes,
// every other option's length must stay inside its area (options running
// past the packet are a libslirp CVE input and are refused), and the
// options this stack reads have their sizes checked. Option overload (52)
// makes the file and/or sname fields option areas too; they are checked
// the same way. After that, accessors cannot fail.

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "core/types.h"
#include "netstack/wire/dns.h"

namespace reel::wire {

enum class DhcpError : u8 {
  none,
  too_short,          // shorter than the 236-byte header plus the magic cookie
  bad_cookie,         // not 99.130.83.99 (plain BOOTP vendor area)
  bad_hardware,       // hlen > 16 (chaddr would overflow)
  option_overrun,     // an option's length byte or value runs past its area
  bad_option_length,  // a fixed-size option (50, 51, 52, 53, 54, 57) of the wrong size
};

std::string_view to_string(DhcpError error);

enum class DhcpMessageType : u8 {
  discover = 1,
  offer = 2,
  request = 3,
  decline = 4,
  ack = 5,
  nak = 6,
  release = 7,
  inform = 8,
};

namespace dhcp_option {
inline constexpr u8 pad = 0;
inline constexpr u8 subnet_mask = 1;
inline constexpr u8 router = 3;
inline constexpr u8 dns_server = 6;
inline constexpr u8 hostname = 12;
inline constexpr u8 domain_name = 15;
inline constexpr u8 broadcast = 28;
inline constexpr u8 requested_ip = 50;
inline constexpr u8 lease_time = 51;
inline constexpr u8 overload = 52;
inline constexpr u8 message_type = 53;
inline constexpr u8 server_id = 54;
inline constexpr u8 parameter_request_list = 55;
inline constexpr u8 max_message_size = 57;
inline constexpr u8 client_id = 61;
inline constexpr u8 tftp_server_name = 66;
inline constexpr u8 bootfile_name = 67;
inline constexpr u8 domain_search = 119;
inline constexpr u8 end = 255;
}  // namespace dhcp_option

inline constexpr std::size_t kBootpHeaderSize = 236;    // up to the vendor/options area
inline constexpr std::size_t kDhcpOptionsOffset = 240;  // after the magic cookie
inline constexpr std::size_t kBootpMinimumSize = 300;   // RFC 951's 64-byte vendor area
inline constexpr u16 kDhcpServerPort = 67;
inline constexpr u16 kDhcpClientPort = 68;

// IPv4 addresses are host-order u32 here: 10.0.2.15 is 0x0a00020f.

struct DhcpOption {
  u8 code = 0;
  std::span<const u8> value;
};

struct DhcpParsed;

class DhcpMessage {
 public:
  // `bytes` is the UDP payload; it must outlive the view.
  static DhcpParsed parse(std::span<const u8> bytes);

  u8 op() const { return m_bytes[0]; }  // 1 request, 2 reply
  u8 htype() const { return m_bytes[1]; }
  u8 hlen() const { return m_bytes[2]; }
  u8 hops() const { return m_bytes[3]; }
  u32 xid() const { return load32(4); }
  u16 secs() const { return load16(8); }
  u16 flags() const { return load16(10); }
  bool broadcast_flag() const { return (flags() & 0x8000) != 0; }
  u32 ciaddr() const { return load32(12); }
  u32 yiaddr() const { return load32(16); }
  u32 siaddr() const { return load32(20); }
  u32 giaddr() const { return load32(24); }
  std::span<const u8, 16> chaddr() const { return m_bytes.subspan<28, 16>(); }
  std::span<const u8> hardware_address() const { return m_bytes.subspan(28, hlen()); }
  std::span<const u8, 64> sname() const { return m_bytes.subspan<44, 64>(); }
  std::span<const u8, 128> file() const { return m_bytes.subspan<108, 128>(); }
  std::span<const u8> bytes() const { return m_bytes; }

  // Option 52: 0 none, 1 file holds options, 2 sname does, 3 both. When
  // set, file()/sname() are option areas rather than names.
  u8 overload() const { return m_overload; }

  // Every option but pad and end, in the order RFC 2131 4.1 reads them:
  // options area, then file, then sname (when overloaded).
  class OptionIterator {
   public:
    DhcpOption operator*() const;
    OptionIterator& operator++();
    bool operator==(const OptionIterator& other) const {
      return m_area == other.m_area && m_pos == other.m_pos;
    }

   private:
    friend class DhcpMessage;
    void settle();  // skips pads and moves past ends / area ends
    const DhcpMessage* m_msg = nullptr;
    std::size_t m_area = 0;
    std::size_t m_pos = 0;
  };
  OptionIterator begin() const;
  OptionIterator end() const;

  // First instance of an option (RFC 3396 concatenation is not done).
  std::optional<std::span<const u8>> option(u8 code) const;

  // Typed getters; nullopt means the option is absent.
  std::optional<DhcpMessageType> message_type() const;  // raw values outside 1..8 kept as is
  std::optional<u32> requested_ip() const;
  std::optional<u32> server_id() const;
  std::optional<u32> lease_time() const;
  std::optional<u16> max_message_size() const;
  std::optional<std::span<const u8>> parameter_request_list() const;
  std::optional<std::span<const u8>> client_id() const;
  std::optional<std::string_view> hostname() const;

 private:
  explicit DhcpMessage(std::span<const u8> bytes) : m_bytes(bytes) {}
  u16 load16(std::size_t at) const { return static_cast<u16>((m_bytes[at] << 8) | m_bytes[at + 1]); }
  u32 load32(std::size_t at) const {
    return (u32{m_bytes[at]} << 24) | (u32{m_bytes[at + 1]} << 16) | (u32{m_bytes[at + 2]} << 8) |
           u32{m_bytes[at + 3]};
  }
  std::span<const u8> area(std::size_t index) const;
  static constexpr std::size_t kAreas = 3;

  std::span<const u8> m_bytes;
  u8 m_overload = 0;
};

// The view, or why there is none (for drop counters).
struct DhcpParsed {
  std::optional<DhcpMessage> message;
  DhcpError error = DhcpError::none;
  explicit operator bool() const { return message.has_value(); }
  bool has_value() const { return message.has_value(); }
  const DhcpMessage& operator*() const { return *message; }
  const DhcpMessage* operator->() const { return &*message; }
};

// The fixed part of a reply (op 2). Strings longer than their fields (63
// and 127 bytes, leaving a NUL) make finish() fail.
struct DhcpReplyHeader {
  u8 htype = 1;
  u8 hlen = 6;
  u32 xid = 0;
  u16 flags = 0;  // echo the client's broadcast bit
  u32 ciaddr = 0;
  u32 yiaddr = 0;
  u32 siaddr = 0;
  u32 giaddr = 0;
  std::array<u8, 16> chaddr{};
  std::string_view sname;
  std::string_view file;
};

// Writes a reply into a caller's buffer: the header at construction, then
// options in the order they are added, then end and zero padding. A value
// that does not fit (buffer too small, string over 255 bytes, bad domain
// name) makes the builder fail sticky, and finish() returns nullopt.
class DhcpReplyBuilder {
 public:
  DhcpReplyBuilder(std::span<u8> out, const DhcpReplyHeader& header);

  DhcpReplyBuilder& message_type(DhcpMessageType type);
  DhcpReplyBuilder& subnet_mask(u32 mask) { return address_option(dhcp_option::subnet_mask, mask); }
  DhcpReplyBuilder& router(u32 address) { return address_option(dhcp_option::router, address); }
  DhcpReplyBuilder& dns_servers(std::span<const u32> addresses);
  DhcpReplyBuilder& hostname(std::string_view name) { return string_option(dhcp_option::hostname, name); }
  DhcpReplyBuilder& domain_name(std::string_view name) {
    return string_option(dhcp_option::domain_name, name);
  }
  DhcpReplyBuilder& broadcast(u32 address) { return address_option(dhcp_option::broadcast, address); }
  DhcpReplyBuilder& lease_time(u32 seconds);
  DhcpReplyBuilder& server_id(u32 address) { return address_option(dhcp_option::server_id, address); }
  // RFC 3397; split over several 119 options when longer than 255 bytes
  // (RFC 3396), compression offsets counted across the concatenation.
  DhcpReplyBuilder& domain_search(std::span<const std::string_view> names,
                                  DnsCompression compression = DnsCompression::on);
  DhcpReplyBuilder& tftp_server_name(std::string_view name) {
    return string_option(dhcp_option::tftp_server_name, name);
  }
  DhcpReplyBuilder& bootfile_name(std::string_view name) {
    return string_option(dhcp_option::bootfile_name, name);
  }
  DhcpReplyBuilder& raw_option(u8 code, std::span<const u8> value);

  // End option, then zeros up to `minimum_size` (300 as RFC 951 servers
  // do; libslirp sends 548). Returns the bytes written.
  std::optional<std::size_t> finish(std::size_t minimum_size = kBootpMinimumSize);

 private:
  DhcpReplyBuilder& address_option(u8 code, u32 address);
  DhcpReplyBuilder& string_option(u8 code, std::string_view value);
  std::span<u8> m_out;
  std::size_t m_pos = 0;
  bool m_failed = false;
};

}  // namespace reel::wire
