#include "netstack/wire/tcp.h"

#include <algorithm>
#include <array>

#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/ipv4.h"

namespace reel::wire {

namespace {

enum OptionKind : u8 {
  kEol = 0,
  kNop = 1,
  kMss = 2,
  kWindowScale = 3,
  kSackPermitted = 4,
  kSack = 5,
  kTimestamps = 8,
};

}  // namespace

std::string_view to_string(TcpError error) {
  switch (error) {
    case TcpError::none:
      return "none";
    case TcpError::too_short:
      return "too_short";
    case TcpError::bad_data_offset:
      return "bad_data_offset";
    case TcpError::bad_option:
      return "bad_option";
    case TcpError::bad_checksum:
      return "bad_checksum";
    case TcpError::fragmented:
      return "fragmented";
    case TcpError::not_tcp:
      return "not_tcp";
  }
  return "unknown";
}

std::optional<TcpOptions> parse_tcp_options(std::span<const u8> bytes) {
  TcpOptions o;
  std::size_t i = 0;
  while (i < bytes.size()) {
    const u8 kind = bytes[i];
    if (kind == kEol) break;  // the rest is padding
    if (kind == kNop) {
      ++i;
      continue;
    }
    if (i + 1 >= bytes.size()) return std::nullopt;  // no room for the length
    const std::size_t length = bytes[i + 1];
    if (length < 2 || length > bytes.size() - i) return std::nullopt;
    const u8* p = &bytes[i + 2];
    switch (kind) {
      case kMss:
        if (length != 4) return std::nullopt;
        o.mss = load_be16(p);
        break;
      case kWindowScale:
        if (length != 3) return std::nullopt;
        o.window_scale = p[0];
        break;
      case kSackPermitted:
        if (length != 2) return std::nullopt;
        o.sack_permitted = true;
        break;
      case kSack: {
        const std::size_t n = (length - 2) / 8;
        if ((length - 2) % 8 != 0 || n == 0 || n > kTcpMaxSackBlocks) return std::nullopt;
        o.sack_block_count = static_cast<u8>(n);
        for (std::size_t b = 0; b < n; ++b) {
          o.sack_blocks[b] = TcpSackBlock{load_be32(p + 8 * b), load_be32(p + 8 * b + 4)};
        }
        break;
      }
      case kTimestamps:
        if (length != 10) return std::nullopt;
        o.timestamps = TcpTimestamps{load_be32(p), load_be32(p + 4)};
        break;
      default:
        if (o.unknown_count != 0xff) ++o.unknown_count;
        break;
    }
    i += length;
  }
  return o;
}

std::optional<std::size_t> encode_tcp_options(std::span<u8> out, const TcpOptions& o) {
  if (o.sack_block_count > kTcpMaxSackBlocks) return std::nullopt;
  std::array<u8, kTcpMaxOptionsSize> buf{};
  std::size_t n = 0;
  // Writes past 40 bytes are counted, not stored; the length check below
  // then refuses the list.
  const auto put = [&](u8 byte) {
    if (n < buf.size()) buf[n] = byte;
    ++n;
  };
  const auto put16 = [&](u16 v) {
    put(static_cast<u8>(v >> 8));
    put(static_cast<u8>(v));
  };
  const auto put32 = [&](u32 v) {
    put16(static_cast<u16>(v >> 16));
    put16(static_cast<u16>(v));
  };
  if (o.mss) {
    put(kMss);
    put(4);
    put16(*o.mss);
  }
  if (o.timestamps) {
    if (o.sack_permitted) {
      put(kSackPermitted);
      put(2);
    } else {
      put(kNop);
      put(kNop);
    }
    put(kTimestamps);
    put(10);
    put32(o.timestamps->value);
    put32(o.timestamps->echo_reply);
  } else if (o.sack_permitted) {
    put(kNop);
    put(kNop);
    put(kSackPermitted);
    put(2);
  }
  if (o.window_scale) {
    put(kNop);
    put(kWindowScale);
    put(3);
    put(*o.window_scale);
  }
  if (o.sack_block_count != 0) {
    put(kNop);
    put(kNop);
    put(kSack);
    put(static_cast<u8>(2 + 8 * o.sack_block_count));
    for (const TcpSackBlock& b : o.sacks()) {
      put32(b.left);
      put32(b.right);
    }
  }
  if (n > buf.size() || out.size() < n) return std::nullopt;
  std::copy_n(buf.begin(), n, out.begin());
  return n;
}

std::optional<std::size_t> tcp_header_length(const TcpOptions& options) {
  std::array<u8, kTcpMaxOptionsSize> scratch{};
  const auto n = encode_tcp_options(scratch, options);
  if (!n) return std::nullopt;
  return kTcpMinHeaderSize + *n;
}

TcpSegment::Parsed TcpSegment::parse(std::span<const u8> bytes, u32 source_ip, u32 destination_ip) {
  if (bytes.size() < kTcpMinHeaderSize) return {std::nullopt, TcpError::too_short};
  const std::size_t header_length = std::size_t{static_cast<u8>(bytes[12] >> 4)} * 4;
  if (header_length < kTcpMinHeaderSize || header_length > bytes.size()) {
    return {std::nullopt, TcpError::bad_data_offset};
  }
  if (bytes.size() > 0xffff) return {std::nullopt, TcpError::bad_data_offset};
  InternetChecksum c;
  c.add_ipv4_pseudo_header(source_ip, destination_ip, static_cast<u8>(IpProtocol::tcp),
                           static_cast<u16>(bytes.size()));
  c.add(bytes);
  if (c.sum() != 0xffff) return {std::nullopt, TcpError::bad_checksum};
  const auto options = parse_tcp_options(bytes.subspan(kTcpMinHeaderSize, header_length - kTcpMinHeaderSize));
  if (!options) return {std::nullopt, TcpError::bad_option};
  return {TcpSegment(bytes, header_length, *options), TcpError::none};
}

TcpSegment::Parsed TcpSegment::parse(const Ipv4Packet& packet) {
  if (packet.protocol() != static_cast<u8>(IpProtocol::tcp)) return {std::nullopt, TcpError::not_tcp};
  if (packet.is_fragment()) return {std::nullopt, TcpError::fragmented};
  return parse(packet.payload(), packet.source(), packet.destination());
}

u16 TcpSegment::source_port() const { return load_be16(&m_bytes[0]); }
u16 TcpSegment::destination_port() const { return load_be16(&m_bytes[2]); }
u32 TcpSegment::sequence() const { return load_be32(&m_bytes[4]); }
u32 TcpSegment::acknowledgment() const { return load_be32(&m_bytes[8]); }
u16 TcpSegment::window() const { return load_be16(&m_bytes[14]); }
u16 TcpSegment::checksum() const { return load_be16(&m_bytes[16]); }
u16 TcpSegment::urgent_pointer() const { return load_be16(&m_bytes[18]); }

u32 TcpSegment::sequence_length() const {
  return static_cast<u32>(payload().size()) + (has(kTcpSyn) ? 1 : 0) + (has(kTcpFin) ? 1 : 0);
}

std::optional<std::size_t> build_tcp(std::span<u8> out, u32 source_ip, u32 destination_ip, const TcpFields& f,
                                     std::span<const u8> payload) {
  std::array<u8, kTcpMaxOptionsSize> options{};
  const auto options_length = encode_tcp_options(options, f.options);
  if (!options_length) return std::nullopt;
  const std::size_t header_length = kTcpMinHeaderSize + *options_length;
  const std::size_t total = header_length + payload.size();
  if (total > 0xffff || out.size() < total) return std::nullopt;
  // A payload elsewhere is summed as it is copied in (one pass over it);
  // one already in place, or overlapping its place, is summed below.
  const u8* const place = out.data() + header_length;
  const bool apart = !payload.empty() &&
                     (payload.data() + payload.size() <= place || place + payload.size() <= payload.data());
  InternetChecksum payload_sum;
  if (apart) {
    payload_sum.add_copy(out.subspan(header_length), payload);
  } else {
    place_payload(out, header_length, payload);
  }
  store_be16(&out[0], f.source_port);
  store_be16(&out[2], f.destination_port);
  store_be32(&out[4], f.sequence);
  store_be32(&out[8], f.acknowledgment);
  out[12] = static_cast<u8>((header_length / 4) << 4);
  out[13] = f.flags;
  store_be16(&out[14], f.window);
  store_be16(&out[16], 0);
  store_be16(&out[18], f.urgent_pointer);
  std::copy_n(options.begin(), *options_length, out.begin() + kTcpMinHeaderSize);
  InternetChecksum c;
  c.add_ipv4_pseudo_header(source_ip, destination_ip, static_cast<u8>(IpProtocol::tcp),
                           static_cast<u16>(total));
  c.add(out.first(header_length));
  if (apart) {
    c.add_folded(payload_sum.sum());
  } else {
    c.add(out.subspan(header_length, payload.size()));
  }
  store_be16(&out[16], c.checksum());
  return total;
}

}  // namespace reel::wire
