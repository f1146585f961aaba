#include "netstack/wire/dhcp.h"

#include <algorithm>
#include <cstring>

namespace reel::wire {

namespace {

constexpr std::array<u8, 4> kMagicCookie{99, 130, 83, 99};

// Sizes of the options this stack reads by type; 0 means "any".
std::size_t fixed_size(u8 code) {
  switch (code) {
    case dhcp_option::requested_ip:
    case dhcp_option::lease_time:
    case dhcp_option::server_id:
      return 4;
    case dhcp_option::overload:
    case dhcp_option::message_type:
      return 1;
    case dhcp_option::max_message_size:
      return 2;
    default:
      return 0;
  }
}

DhcpError check_area(std::span<const u8> area, u8* overload) {
  std::size_t pos = 0;
  while (pos < area.size()) {
    const u8 code = area[pos];
    if (code == dhcp_option::pad) {
      ++pos;
      continue;
    }
    if (code == dhcp_option::end) return DhcpError::none;
    if (pos + 1 >= area.size()) return DhcpError::option_overrun;
    const std::size_t len = area[pos + 1];
    if (area.size() - (pos + 2) < len) return DhcpError::option_overrun;
    const std::size_t want = fixed_size(code);
    if (want != 0 && len != want) return DhcpError::bad_option_length;
    if (code == dhcp_option::overload && overload && *overload == 0) *overload = area[pos + 2] & 3;
    pos += 2 + len;
  }
  // A missing end option is tolerated: the area ends with the packet.
  return DhcpError::none;
}

}  // namespace

std::string_view to_string(DhcpError error) {
  switch (error) {
    case DhcpError::none:
      return "none";
    case DhcpError::too_short:
      return "too_short";
    case DhcpError::bad_cookie:
      return "bad_cookie";
    case DhcpError::bad_hardware:
      return "bad_hardware";
    case DhcpError::option_overrun:
      return "option_overrun";
    case DhcpError::bad_option_length:
      return "bad_option_length";
  }
  return "?";
}

DhcpParsed DhcpMessage::parse(std::span<const u8> bytes) {
  if (bytes.size() < kDhcpOptionsOffset) return {std::nullopt, DhcpError::too_short};
  if (!std::equal(kMagicCookie.begin(), kMagicCookie.end(), bytes.begin() + kBootpHeaderSize)) {
    return {std::nullopt, DhcpError::bad_cookie};
  }
  if (bytes[2] > 16) return {std::nullopt, DhcpError::bad_hardware};
  DhcpMessage m(bytes);
  if (auto e = check_area(bytes.subspan(kDhcpOptionsOffset), &m.m_overload); e != DhcpError::none) {
    return {std::nullopt, e};
  }
  for (std::size_t i = 1; i < kAreas; ++i) {
    if (auto e = check_area(m.area(i), nullptr); e != DhcpError::none) return {std::nullopt, e};
  }
  return {m, DhcpError::none};
}

std::span<const u8> DhcpMessage::area(std::size_t index) const {
  switch (index) {
    case 0:
      return m_bytes.subspan(kDhcpOptionsOffset);
    case 1:
      return (m_overload & 1) ? std::span<const u8>(file()) : std::span<const u8>();
    case 2:
      return (m_overload & 2) ? std::span<const u8>(sname()) : std::span<const u8>();
    default:
      return {};
  }
}

void DhcpMessage::OptionIterator::settle() {
  while (m_area < kAreas) {
    const std::span<const u8> a = m_msg->area(m_area);
    if (m_pos < a.size() && a[m_pos] == dhcp_option::pad) {
      ++m_pos;
      continue;
    }
    if (m_pos >= a.size() || a[m_pos] == dhcp_option::end) {
      ++m_area;
      m_pos = 0;
      continue;
    }
    return;
  }
  m_pos = 0;
}

DhcpOption DhcpMessage::OptionIterator::operator*() const {
  const std::span<const u8> a = m_msg->area(m_area);
  return {a[m_pos], a.subspan(m_pos + 2, a[m_pos + 1])};
}

DhcpMessage::OptionIterator& DhcpMessage::OptionIterator::operator++() {
  const std::span<const u8> a = m_msg->area(m_area);
  m_pos += 2 + std::size_t{a[m_pos + 1]};
  settle();
  return *this;
}

DhcpMessage::OptionIterator DhcpMessage::begin() const {
  OptionIterator it;
  it.m_msg = this;
  it.settle();
  return it;
}

DhcpMessage::OptionIterator DhcpMessage::end() const {
  OptionIterator it;
  it.m_msg = this;
  it.m_area = kAreas;
  return it;
}

std::optional<std::span<const u8>> DhcpMessage::option(u8 code) const {
  for (DhcpOption o : *this) {
    if (o.code == code) return o.value;
  }
  return std::nullopt;
}

std::optional<DhcpMessageType> DhcpMessage::message_type() const {
  if (auto v = option(dhcp_option::message_type)) return static_cast<DhcpMessageType>((*v)[0]);
  return std::nullopt;
}

namespace {
u32 be32(std::span<const u8> v) {
  return (u32{v[0]} << 24) | (u32{v[1]} << 16) | (u32{v[2]} << 8) | u32{v[3]};
}
}  // namespace

std::optional<u32> DhcpMessage::requested_ip() const {
  if (auto v = option(dhcp_option::requested_ip)) return be32(*v);
  return std::nullopt;
}

std::optional<u32> DhcpMessage::server_id() const {
  if (auto v = option(dhcp_option::server_id)) return be32(*v);
  return std::nullopt;
}

std::optional<u32> DhcpMessage::lease_time() const {
  if (auto v = option(dhcp_option::lease_time)) return be32(*v);
  return std::nullopt;
}

std::optional<u16> DhcpMessage::max_message_size() const {
  if (auto v = option(dhcp_option::max_message_size)) return static_cast<u16>(((*v)[0] << 8) | (*v)[1]);
  return std::nullopt;
}

std::optional<std::span<const u8>> DhcpMessage::parameter_request_list() const {
  return option(dhcp_option::parameter_request_list);
}

std::optional<std::span<const u8>> DhcpMessage::client_id() const { return option(dhcp_option::client_id); }

std::optional<std::string_view> DhcpMessage::hostname() const {
  if (auto v = option(dhcp_option::hostname)) {
    return std::string_view(reinterpret_cast<const char*>(v->data()), v->size());
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- builder --

DhcpReplyBuilder::DhcpReplyBuilder(std::span<u8> out, const DhcpReplyHeader& h) : m_out(out) {
  if (out.size() < kDhcpOptionsOffset || h.hlen > 16 || h.sname.size() > 63 || h.file.size() > 127) {
    m_failed = true;
    return;
  }
  std::fill(out.begin(), out.begin() + kDhcpOptionsOffset, u8{0});
  auto put32 = [&](std::size_t at, u32 v) {
    out[at] = static_cast<u8>(v >> 24);
    out[at + 1] = static_cast<u8>(v >> 16);
    out[at + 2] = static_cast<u8>(v >> 8);
    out[at + 3] = static_cast<u8>(v);
  };
  out[0] = 2;
  out[1] = h.htype;
  out[2] = h.hlen;
  out[3] = 0;
  put32(4, h.xid);
  out[10] = static_cast<u8>(h.flags >> 8);
  out[11] = static_cast<u8>(h.flags);
  put32(12, h.ciaddr);
  put32(16, h.yiaddr);
  put32(20, h.siaddr);
  put32(24, h.giaddr);
  std::copy(h.chaddr.begin(), h.chaddr.end(), out.begin() + 28);
  std::copy(h.sname.begin(), h.sname.end(), out.begin() + 44);
  std::copy(h.file.begin(), h.file.end(), out.begin() + 108);
  std::copy(kMagicCookie.begin(), kMagicCookie.end(), out.begin() + kBootpHeaderSize);
  m_pos = kDhcpOptionsOffset;
}

DhcpReplyBuilder& DhcpReplyBuilder::raw_option(u8 code, std::span<const u8> value) {
  // Room for this option and still the end option after it.
  if (m_failed || value.size() > 255 || m_out.size() - m_pos < value.size() + 3) {
    m_failed = true;
    return *this;
  }
  m_out[m_pos] = code;
  m_out[m_pos + 1] = static_cast<u8>(value.size());
  if (!value.empty()) std::memcpy(m_out.data() + m_pos + 2, value.data(), value.size());
  m_pos += 2 + value.size();
  return *this;
}

DhcpReplyBuilder& DhcpReplyBuilder::message_type(DhcpMessageType type) {
  const u8 v = static_cast<u8>(type);
  return raw_option(dhcp_option::message_type, std::span(&v, 1));
}

DhcpReplyBuilder& DhcpReplyBuilder::address_option(u8 code, u32 address) {
  const std::array<u8, 4> v{static_cast<u8>(address >> 24), static_cast<u8>(address >> 16),
                            static_cast<u8>(address >> 8), static_cast<u8>(address)};
  return raw_option(code, v);
}

DhcpReplyBuilder& DhcpReplyBuilder::lease_time(u32 seconds) {
  return address_option(dhcp_option::lease_time, seconds);
}

DhcpReplyBuilder& DhcpReplyBuilder::dns_servers(std::span<const u32> addresses) {
  std::array<u8, 252> v{};
  if (addresses.empty() || addresses.size() > v.size() / 4) {
    m_failed = true;
    return *this;
  }
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    for (std::size_t b = 0; b < 4; ++b) v[i * 4 + b] = static_cast<u8>(addresses[i] >> (24 - 8 * b));
  }
  return raw_option(dhcp_option::dns_server, std::span(v).first(addresses.size() * 4));
}

DhcpReplyBuilder& DhcpReplyBuilder::string_option(u8 code, std::string_view value) {
  if (value.empty()) {  // RFC 2132: these options are at least one byte
    m_failed = true;
    return *this;
  }
  return raw_option(code, std::span(reinterpret_cast<const u8*>(value.data()), value.size()));
}

DhcpReplyBuilder& DhcpReplyBuilder::domain_search(std::span<const std::string_view> names,
                                                  DnsCompression compression) {
  // Option data never exceeds a 1500-byte packet, so encode once, then cut.
  std::array<u8, 1500> encoded{};
  const auto n = encode_dns_names(names, encoded, compression);
  if (!n || *n == 0) {
    m_failed = true;
    return *this;
  }
  for (std::size_t at = 0; at < *n && !m_failed; at += 255) {
    raw_option(dhcp_option::domain_search,
               std::span(encoded).subspan(at, std::min<std::size_t>(255, *n - at)));
  }
  return *this;
}

std::optional<std::size_t> DhcpReplyBuilder::finish(std::size_t minimum_size) {
  if (m_failed || m_out.size() - m_pos < 1) return std::nullopt;
  m_out[m_pos++] = dhcp_option::end;
  if (m_pos < minimum_size) {
    if (m_out.size() < minimum_size) return std::nullopt;
    std::fill(m_out.begin() + m_pos, m_out.begin() + minimum_size, u8{0});
    m_pos = minimum_size;
  }
  return m_pos;
}

}  // namespace reel::wire
