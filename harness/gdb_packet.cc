#include "harness/gdb_packet.h"

#include <cstdio>

namespace reel::gdb {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

void PacketReader::feed(std::span<const u8> bytes, std::vector<PacketEvent>& out) {
  for (const u8 b : bytes) {
    switch (m_state) {
      case State::idle:
        if (b == '$') {
          m_state = State::payload;
          m_payload.clear();
          m_sum = 0;
          m_overlong = false;
        } else if (b == '+') {
          out.push_back({PacketEvent::Kind::ack, {}});
        } else if (b == '-') {
          out.push_back({PacketEvent::Kind::nack, {}});
        } else if (b == 0x03) {
          out.push_back({PacketEvent::Kind::interrupt, {}});
        }
        break;
      case State::payload:
        if (b == '#') {
          m_state = State::check_hi;
        } else if (b == '$') {
          // A new packet before the end of this one: the peer gave up on
          // it (gdb does this after a timeout). Start over.
          m_payload.clear();
          m_sum = 0;
          m_overlong = false;
        } else {
          m_sum = static_cast<u8>(m_sum + b);
          if (m_payload.size() < kMaxPacket) {
            m_payload.push_back(static_cast<char>(b));
          } else {
            m_overlong = true;
          }
        }
        break;
      case State::check_hi:
        m_check_hi = hex_digit(static_cast<char>(b));
        m_state = State::check_lo;
        break;
      case State::check_lo: {
        const int lo = hex_digit(static_cast<char>(b));
        m_state = State::idle;
        if (m_overlong) {
          out.push_back({PacketEvent::Kind::overlong, {}});
        } else if (m_check_hi < 0 || lo < 0 || static_cast<u8>(m_check_hi << 4 | lo) != m_sum) {
          out.push_back({PacketEvent::Kind::bad_checksum, {}});
        } else {
          out.push_back({PacketEvent::Kind::packet, std::move(m_payload)});
        }
        m_payload.clear();
        break;
      }
    }
  }
}
u8 checksum(std::string_view payload) {
  u8 sum = 0;
  for (const char c : payload) sum = static_cast<u8>(sum + static_cast<u8>(c));
  return sum;
}

std::string run_length_encode(std::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    size_t run = 1;
    while (i + run < text.size() && text[i + run] == c && run < 98) ++run;
    size_t repeats = run - 1;
    // The count character is repeats + 29; 6 and 7 would make '#' and '$'.
    if (repeats == 6 || repeats == 7) repeats = 5;
    if (repeats >= 3) {
      out.push_back(c);
      out.push_back('*');
      out.push_back(static_cast<char>(repeats + 29));
      i += repeats + 1;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

std::optional<std::string> run_length_decode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '*') {
      out.push_back(text[i]);
      continue;
    }
    if (out.empty() || i + 1 >= text.size()) return std::nullopt;
    const int n = static_cast<u8>(text[++i]) - 29;
    if (n < 0) return std::nullopt;
    out.append(static_cast<size_t>(n), out.back());
  }
  return out;
}

// Escapes first, then run-length encodes, as gdbserver does: the reader
// expands runs before it undoes escapes, and an escaped body has no '$',
// '#' or '*' that a run could repeat.
std::string frame_packet(std::string_view payload, bool run_length) {
  std::string body;
  body.reserve(payload.size() + 8);
  for (const char c : payload) {
    if (c == '$' || c == '#' || c == '}' || c == '*') {
      body += '}';
      body += static_cast<char>(c ^ 0x20);
    } else {
      body += c;
    }
  }
  if (run_length) body = run_length_encode(body);
  const u8 sum = checksum(body);
  std::string out;
  out.reserve(body.size() + 4);
  out.push_back('$');
  out.append(body);
  out.push_back('#');
  out += kHexDigits[sum >> 4];
  out += kHexDigits[sum & 15];
  return out;
}

std::optional<std::string> unescape_binary(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '}') {
      if (i + 1 >= text.size()) return std::nullopt;
      out.push_back(static_cast<char>(text[++i] ^ 0x20));
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string to_hex(std::span<const u8> bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const u8 b : bytes) {
    out += kHexDigits[b >> 4];
    out += kHexDigits[b & 15];
  }
  return out;
}

std::string to_hex(std::string_view text) {
  return to_hex(std::span<const u8>(reinterpret_cast<const u8*>(text.data()), text.size()));
}

std::optional<std::vector<u8>> from_hex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  std::vector<u8> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<u8>(hi << 4 | lo);
  }
  return out;
}

std::optional<u64> parse_hex(std::string_view hex) {
  if (hex.empty() || hex.size() > 16) return std::nullopt;
  u64 v = 0;
  for (const char c : hex) {
    const int d = hex_digit(c);
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<u64>(d);
  }
  return v;
}

std::string hex_le32(u32 value) {
  const u8 b[4] = {static_cast<u8>(value), static_cast<u8>(value >> 8), static_cast<u8>(value >> 16),
                   static_cast<u8>(value >> 24)};
  return to_hex(std::span<const u8>(b, 4));
}

std::optional<u32> parse_hex_le32(std::string_view hex) {
  if (hex.size() != 8) return std::nullopt;
  const auto bytes = from_hex(hex);
  if (!bytes) return std::nullopt;
  const auto& b = *bytes;
  return u32{b[0]} | u32{b[1]} << 8 | u32{b[2]} << 16 | u32{b[3]} << 24;
}

std::optional<std::pair<u64, u64>> parse_address_length(std::string_view text) {
  const size_t comma = text.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  const auto addr = parse_hex(text.substr(0, comma));
  const auto len = parse_hex(text.substr(comma + 1));
  if (!addr || !len) return std::nullopt;
  return std::make_pair(*addr, *len);
}

namespace {

std::optional<std::pair<std::pair<u64, u64>, std::string_view>> split_write(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto al = parse_address_length(text.substr(0, colon));
  if (!al) return std::nullopt;
  return std::make_pair(*al, text.substr(colon + 1));
}

}  // namespace

std::optional<MemoryWrite> parse_memory_write_hex(std::string_view text) {
  const auto parts = split_write(text);
  if (!parts) return std::nullopt;
  const auto [al, data] = *parts;
  if (al.second > kMaxPacket || data.size() != al.second * 2) return std::nullopt;
  auto bytes = from_hex(data);
  if (!bytes) return std::nullopt;
  return MemoryWrite{al.first, std::move(*bytes)};
}

std::optional<MemoryWrite> parse_memory_write_binary(std::string_view text) {
  const auto parts = split_write(text);
  if (!parts) return std::nullopt;
  const auto [al, data] = *parts;
  const auto raw = unescape_binary(data);
  if (!raw || raw->size() != al.second) return std::nullopt;
  return MemoryWrite{al.first, std::vector<u8>(raw->begin(), raw->end())};
}

std::optional<BreakpointRequest> parse_breakpoint(std::string_view text) {
  // "type,addr,kind" possibly followed by ";cond..." which is not supported.
  const size_t c1 = text.find(',');
  if (c1 == std::string_view::npos) return std::nullopt;
  const size_t c2 = text.find(',', c1 + 1);
  if (c2 == std::string_view::npos) return std::nullopt;
  std::string_view kind_text = text.substr(c2 + 1);
  if (const size_t semi = kind_text.find(';'); semi != std::string_view::npos)
    kind_text = kind_text.substr(0, semi);
  const auto type = parse_hex(text.substr(0, c1));
  const auto addr = parse_hex(text.substr(c1 + 1, c2 - c1 - 1));
  const auto kind = parse_hex(kind_text);
  if (!type || !addr || !kind || *type > 4) return std::nullopt;
  return BreakpointRequest{static_cast<unsigned>(*type), *addr, *kind};
}

std::optional<std::vector<VContAction>> parse_vcont(std::string_view text) {
  std::vector<VContAction> out;
  if (text.empty() || text[0] != ';') return std::nullopt;
  size_t i = 1;
  while (i <= text.size()) {
    size_t next = text.find(';', i);
    if (next == std::string_view::npos) next = text.size();
    std::string_view item = text.substr(i, next - i);
    if (item.empty()) return std::nullopt;
    VContAction a;
    std::string_view thread;
    if (const size_t colon = item.find(':'); colon != std::string_view::npos) {
      thread = item.substr(colon + 1);
      item = item.substr(0, colon);
      if (thread.empty()) return std::nullopt;
      a.thread = std::string(thread);
    }
    const char c = item[0];
    if (c == 'c' || c == 's' || c == 't') {
      if (item.size() != 1) return std::nullopt;
      a.action = c;
    } else if (c == 'C' || c == 'S') {
      // The signal number is accepted and ignored: a machine has no signals.
      if (item.size() != 3 || !parse_hex(item.substr(1))) return std::nullopt;
      a.action = static_cast<char>(c - 'A' + 'a');
    } else {
      return std::nullopt;
    }
    out.push_back(std::move(a));
    i = next + 1;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::optional<XferRead> parse_xfer_read(std::string_view payload) {
  constexpr std::string_view kPrefix = "qXfer:";
  if (!payload.starts_with(kPrefix)) return std::nullopt;
  std::string_view rest = payload.substr(kPrefix.size());
  const size_t c1 = rest.find(':');
  if (c1 == std::string_view::npos) return std::nullopt;
  XferRead r;
  r.object = std::string(rest.substr(0, c1));
  rest = rest.substr(c1 + 1);
  if (!rest.starts_with("read:")) return std::nullopt;
  rest = rest.substr(5);
  const size_t c2 = rest.find(':');
  if (c2 == std::string_view::npos) return std::nullopt;
  r.annex = std::string(rest.substr(0, c2));
  const auto al = parse_address_length(rest.substr(c2 + 1));
  if (!al) return std::nullopt;
  r.offset = al->first;
  r.length = al->second;
  return r;
}

std::string xfer_reply(std::string_view document, u64 offset, u64 length) {
  if (offset >= document.size()) return "l";
  const u64 n = std::min<u64>(length, document.size() - offset);
  const bool last = offset + n >= document.size();
  std::string out(1, last ? 'l' : 'm');
  out.append(document.substr(offset, n));
  return out;
}

}  // namespace reel::gdb
