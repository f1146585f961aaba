#include "netstack/wire/tftp.h"

#include <algorithm>
#include <cstring>

namespace reel::wire {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// Reads a NUL-terminated string at `pos` (advanced past the NUL).
std::optional<std::string_view> read_string(std::span<const u8> b, std::size_t& pos) {
  const auto begin = b.begin() + static_cast<std::ptrdiff_t>(pos);
  const auto nul = std::find(begin, b.end(), u8{0});
  if (nul == b.end()) return std::nullopt;
  const std::string_view s(reinterpret_cast<const char*>(b.data() + pos),
                           static_cast<std::size_t>(nul - begin));
  pos += s.size() + 1;
  return s;
}

std::optional<u64> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  u64 v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const u64 d = static_cast<u64>(c - '0');
    if (v > (~u64{0} - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

class Writer {
 public:
  explicit Writer(std::span<u8> out) : m_out(out) {}
  void u16be(u16 v) {
    if (!room(2)) return;
    m_out[m_pos++] = static_cast<u8>(v >> 8);
    m_out[m_pos++] = static_cast<u8>(v);
  }
  void bytes(std::span<const u8> b) {
    if (!room(b.size())) return;
    if (!b.empty()) std::memcpy(m_out.data() + m_pos, b.data(), b.size());
    m_pos += b.size();
  }
  void string(std::string_view s) {
    if (s.find('\0') != std::string_view::npos || !room(s.size() + 1)) {
      m_ok = false;
      return;
    }
    std::copy(s.begin(), s.end(), m_out.begin() + static_cast<std::ptrdiff_t>(m_pos));
    m_pos += s.size();
    m_out[m_pos++] = 0;
  }
  std::optional<std::size_t> result() const { return m_ok ? std::optional(m_pos) : std::nullopt; }

 private:
  bool room(std::size_t n) {
    if (!m_ok || m_out.size() - m_pos < n) m_ok = false;
    return m_ok;
  }
  std::span<u8> m_out;
  std::size_t m_pos = 0;
  bool m_ok = true;
};

void write_options(Writer& w, std::span<const TftpOption> options) {
  for (const TftpOption& o : options) {
    w.string(o.name);
    w.string(o.value);
  }
}

}  // namespace

std::string_view to_string(TftpError error) {
  switch (error) {
    case TftpError::none:
      return "none";
    case TftpError::too_short:
      return "too_short";
    case TftpError::bad_opcode:
      return "bad_opcode";
    case TftpError::unterminated:
      return "unterminated";
    case TftpError::name_too_long:
      return "name_too_long";
    case TftpError::empty_name:
      return "empty_name";
    case TftpError::bad_mode:
      return "bad_mode";
    case TftpError::too_many_options:
      return "too_many_options";
  }
  return "?";
}

TftpParsed TftpPacket::parse(std::span<const u8> bytes) {
  if (bytes.size() < 2) return {std::nullopt, TftpError::too_short};
  const u16 op = static_cast<u16>((bytes[0] << 8) | bytes[1]);
  if (op < 1 || op > 6) return {std::nullopt, TftpError::bad_opcode};
  TftpPacket p;
  p.m_opcode = static_cast<TftpOpcode>(op);
  std::size_t pos = 2;

  auto read_options = [&]() -> TftpError {
    while (pos < bytes.size()) {
      const auto name = read_string(bytes, pos);
      if (!name) return TftpError::unterminated;
      if (name->empty()) return TftpError::empty_name;
      const auto value = read_string(bytes, pos);
      if (!value) return TftpError::unterminated;
      if (p.m_option_count == kTftpMaxOptions) return TftpError::too_many_options;
      p.m_options[p.m_option_count++] = {*name, *value};
    }
    return TftpError::none;
  };

  switch (p.m_opcode) {
    case TftpOpcode::rrq:
    case TftpOpcode::wrq: {
      const auto name = read_string(bytes, pos);
      if (!name) {
        // An unterminated name that is already too long says more than "unterminated".
        return {std::nullopt,
                bytes.size() - 2 > kTftpMaxFilename ? TftpError::name_too_long : TftpError::unterminated};
      }
      if (name->size() > kTftpMaxFilename) return {std::nullopt, TftpError::name_too_long};
      if (name->empty()) return {std::nullopt, TftpError::empty_name};
      const auto mode = read_string(bytes, pos);
      if (!mode) return {std::nullopt, TftpError::unterminated};
      if (iequals(*mode, "octet")) {
        p.m_mode = TftpMode::octet;
      } else if (iequals(*mode, "netascii")) {
        p.m_mode = TftpMode::netascii;
      } else if (iequals(*mode, "mail")) {
        p.m_mode = TftpMode::mail;
      } else {
        return {std::nullopt, TftpError::bad_mode};
      }
      p.m_filename = *name;
      if (auto e = read_options(); e != TftpError::none) return {std::nullopt, e};
      break;
    }
    case TftpOpcode::oack:
      if (auto e = read_options(); e != TftpError::none) return {std::nullopt, e};
      break;
    case TftpOpcode::data:
    case TftpOpcode::ack:
      if (bytes.size() < 4) return {std::nullopt, TftpError::too_short};
      p.m_number = static_cast<u16>((bytes[2] << 8) | bytes[3]);
      // Bytes after an ACK's block number are ignored.
      if (p.m_opcode == TftpOpcode::data) p.m_data = bytes.subspan(4);
      break;
    case TftpOpcode::error: {
      if (bytes.size() < 4) return {std::nullopt, TftpError::too_short};
      p.m_number = static_cast<u16>((bytes[2] << 8) | bytes[3]);
      pos = 4;
      const auto message = read_string(bytes, pos);
      if (!message) return {std::nullopt, TftpError::unterminated};
      p.m_filename = *message;
      break;
    }
  }
  return {p, TftpError::none};
}

std::optional<std::string_view> TftpPacket::option(std::string_view name) const {
  for (const TftpOption& o : options()) {
    if (iequals(o.name, name)) return o.value;
  }
  return std::nullopt;
}

std::optional<u16> TftpPacket::blksize() const {
  const auto v = option("blksize");
  const auto n = v ? parse_decimal(*v) : std::nullopt;
  if (!n || *n < kTftpMinBlockSize || *n > kTftpMaxBlockSize) return std::nullopt;
  return static_cast<u16>(*n);
}

std::optional<u64> TftpPacket::tsize() const {
  const auto v = option("tsize");
  return v ? parse_decimal(*v) : std::nullopt;
}

std::optional<u8> TftpPacket::timeout() const {
  const auto v = option("timeout");
  const auto n = v ? parse_decimal(*v) : std::nullopt;
  if (!n || *n < 1 || *n > 255) return std::nullopt;
  return static_cast<u8>(*n);
}

std::optional<std::size_t> build_tftp_request(std::span<u8> out, TftpOpcode opcode, std::string_view filename,
                                              TftpMode mode, std::span<const TftpOption> options) {
  if (opcode != TftpOpcode::rrq && opcode != TftpOpcode::wrq) return std::nullopt;
  Writer w(out);
  w.u16be(static_cast<u16>(opcode));
  w.string(filename);
  w.string(mode == TftpMode::octet ? "octet" : mode == TftpMode::netascii ? "netascii" : "mail");
  write_options(w, options);
  return w.result();
}

std::optional<std::size_t> build_tftp_data(std::span<u8> out, u16 block, std::span<const u8> data) {
  Writer w(out);
  w.u16be(static_cast<u16>(TftpOpcode::data));
  w.u16be(block);
  w.bytes(data);
  return w.result();
}

std::optional<std::size_t> build_tftp_ack(std::span<u8> out, u16 block) {
  Writer w(out);
  w.u16be(static_cast<u16>(TftpOpcode::ack));
  w.u16be(block);
  return w.result();
}

std::optional<std::size_t> build_tftp_error(std::span<u8> out, TftpErrorCode code, std::string_view message) {
  Writer w(out);
  w.u16be(static_cast<u16>(TftpOpcode::error));
  w.u16be(static_cast<u16>(code));
  w.string(message);
  return w.result();
}

std::optional<std::size_t> build_tftp_oack(std::span<u8> out, std::span<const TftpOption> options) {
  Writer w(out);
  w.u16be(static_cast<u16>(TftpOpcode::oack));
  write_options(w, options);
  return w.result();
}

}  // namespace reel::wire
