#include "netstack/wire/ipv4.h"

#include <algorithm>

#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"

namespace reel::wire {

std::string_view to_string(Ipv4Error error) {
  switch (error) {
    case Ipv4Error::none:
      return "none";
    case Ipv4Error::too_short:
      return "too_short";
    case Ipv4Error::bad_version:
      return "bad_version";
    case Ipv4Error::bad_ihl:
      return "bad_ihl";
    case Ipv4Error::bad_length:
      return "bad_length";
    case Ipv4Error::bad_checksum:
      return "bad_checksum";
    case Ipv4Error::bad_option:
      return "bad_option";
  }
  return "unknown";
}

namespace {

// RFC 791 3.1: option 0 ends the list, 1 is a one-byte NOP, every other
// option carries a length octet that counts the type and length octets.
bool options_well_formed(std::span<const u8> options) {
  std::size_t i = 0;
  while (i < options.size()) {
    const u8 type = options[i];
    if (type == 0) return true;
    if (type == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= options.size()) return false;
    const u8 length = options[i + 1];
    if (length < 2 || length > options.size() - i) return false;
    i += length;
  }
  return true;
}

}  // namespace

Ipv4Packet::Parsed Ipv4Packet::parse(std::span<const u8> bytes) {
  if (bytes.size() < kIpv4MinHeaderSize) return {std::nullopt, Ipv4Error::too_short};
  if ((bytes[0] >> 4) != 4) return {std::nullopt, Ipv4Error::bad_version};
  const std::size_t header_length = std::size_t{bytes[0] & 0x0fu} * 4;
  if (header_length < kIpv4MinHeaderSize) return {std::nullopt, Ipv4Error::bad_ihl};
  if (bytes.size() < header_length) return {std::nullopt, Ipv4Error::too_short};
  const std::size_t total = load_be16(&bytes[2]);
  if (total < header_length || total > bytes.size()) return {std::nullopt, Ipv4Error::bad_length};
  if (!internet_checksum_ok(bytes.first(header_length))) return {std::nullopt, Ipv4Error::bad_checksum};
  if (!options_well_formed(bytes.subspan(kIpv4MinHeaderSize, header_length - kIpv4MinHeaderSize))) {
    return {std::nullopt, Ipv4Error::bad_option};
  }
  return {Ipv4Packet(bytes.first(total), header_length), Ipv4Error::none};
}

u16 Ipv4Packet::identification() const { return load_be16(&m_bytes[4]); }
u16 Ipv4Packet::fragment_offset() const { return load_be16(&m_bytes[6]) & 0x1fff; }
u16 Ipv4Packet::header_checksum() const { return load_be16(&m_bytes[10]); }
u32 Ipv4Packet::source() const { return load_be32(&m_bytes[12]); }
u32 Ipv4Packet::destination() const { return load_be32(&m_bytes[16]); }

std::optional<std::size_t> build_ipv4(std::span<u8> out, const Ipv4Fields& f, std::span<const u8> payload) {
  if (f.options.size() % 4 != 0 || f.options.size() > kIpv4MaxOptionsSize) return std::nullopt;
  if (f.fragment_offset > 0x1fff) return std::nullopt;
  const std::size_t header_length = kIpv4MinHeaderSize + f.options.size();
  const std::size_t total = header_length + payload.size();
  if (total > 0xffff || out.size() < total) return std::nullopt;
  place_payload(out, header_length, payload);
  out[0] = static_cast<u8>(0x40 | (header_length / 4));
  out[1] = f.tos;
  store_be16(&out[2], static_cast<u16>(total));
  store_be16(&out[4], f.identification);
  u16 flags_offset = f.fragment_offset;
  if (f.dont_fragment) flags_offset |= 0x4000;
  if (f.more_fragments) flags_offset |= 0x2000;
  store_be16(&out[6], flags_offset);
  out[8] = f.ttl;
  out[9] = f.protocol;
  store_be16(&out[10], 0);
  store_be32(&out[12], f.source);
  store_be32(&out[16], f.destination);
  std::copy(f.options.begin(), f.options.end(), out.begin() + kIpv4MinHeaderSize);
  store_be16(&out[10], internet_checksum(out.first(header_length)));
  return total;
}

}  // namespace reel::wire
