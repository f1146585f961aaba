#pragma once

// TFTP packets (RFC 1350; options RFC 2347, blksize 2348, tsize and
// timeout 2349): a checked view and builders.
//
// Every string (filename, mode, option name, option value, error message)
// must end with a NUL inside the packet. Filenames are limited to
// kTftpMaxFilename (512) bytes, as libslirp's server does: a longer name
// (the 600-byte name of the bad-input list) is refused with name_too_long,
// so the server can answer with a TFTP error instead of touching the path.

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "core/types.h"

namespace reel::wire {

enum class TftpError : u8 {
  none,
  too_short,         // no opcode, or DATA/ACK/ERROR without their 2-byte field
  bad_opcode,        // not 1..6
  unterminated,      // a string without its NUL, or an option name without a value
  name_too_long,     // filename over kTftpMaxFilename
  empty_name,        // filename or option name of zero bytes
  bad_mode,          // not netascii, octet or mail
  too_many_options,  // more than kTftpMaxOptions pairs
};

std::string_view to_string(TftpError error);

enum class TftpOpcode : u16 { rrq = 1, wrq = 2, data = 3, ack = 4, error = 5, oack = 6 };
enum class TftpMode : u8 { netascii, octet, mail };

// Error codes of RFC 1350 (0-7) and RFC 2347 (8).
enum class TftpErrorCode : u16 {
  not_defined = 0,
  file_not_found = 1,
  access_violation = 2,
  disk_full = 3,
  illegal_operation = 4,
  unknown_transfer_id = 5,
  file_exists = 6,
  no_such_user = 7,
  option_refused = 8,
};

inline constexpr std::size_t kTftpMaxFilename = 512;
inline constexpr std::size_t kTftpMaxOptions = 16;
inline constexpr std::size_t kTftpDefaultBlockSize = 512;
inline constexpr u16 kTftpMinBlockSize = 8;
inline constexpr u16 kTftpMaxBlockSize = 65464;
inline constexpr u16 kTftpServerPort = 69;

struct TftpOption {
  std::string_view name;
  std::string_view value;
};

struct TftpParsed;

// A parsed packet. Strings and data point into the bytes given to parse(),
// which must outlive the view. Accessors for fields another opcode has
// return empty values (0, "", no options), never garbage.
class TftpPacket {
 public:
  static TftpParsed parse(std::span<const u8> bytes);

  TftpOpcode opcode() const { return m_opcode; }

  // RRQ / WRQ
  std::string_view filename() const { return m_filename; }
  TftpMode mode() const { return m_mode; }
  // RRQ / WRQ / OACK, in packet order.
  std::span<const TftpOption> options() const { return std::span(m_options).first(m_option_count); }
  // The first option of that name, compared case-insensitively.
  std::optional<std::string_view> option(std::string_view name) const;
  // Typed option values; nullopt when absent or not a value the RFC allows
  // (a server then leaves the option out of its OACK).
  std::optional<u16> blksize() const;  // 8..65464
  std::optional<u64> tsize() const;    // any decimal that fits 64 bits
  std::optional<u8> timeout() const;   // 1..255 seconds

  // DATA / ACK
  u16 block() const { return m_number; }
  std::span<const u8> data() const { return m_data; }  // DATA only

  // ERROR
  u16 error_code() const { return m_number; }
  std::string_view error_message() const { return m_filename; }

 private:
  TftpPacket() = default;
  TftpOpcode m_opcode = TftpOpcode::rrq;
  TftpMode m_mode = TftpMode::octet;
  u16 m_number = 0;
  std::string_view m_filename;
  std::span<const u8> m_data;
  std::array<TftpOption, kTftpMaxOptions> m_options{};
  std::size_t m_option_count = 0;
};

// The view, or why there is none (for drop counters).
struct TftpParsed {
  std::optional<TftpPacket> packet;
  TftpError error = TftpError::none;
  explicit operator bool() const { return packet.has_value(); }
  bool has_value() const { return packet.has_value(); }
  const TftpPacket& operator*() const { return *packet; }
  const TftpPacket* operator->() const { return &*packet; }
};

// Builders write into a caller's buffer and return the bytes written, or
// nullopt when it is too small or a string holds a NUL.
std::optional<std::size_t> build_tftp_request(std::span<u8> out, TftpOpcode opcode, std::string_view filename,
                                              TftpMode mode, std::span<const TftpOption> options);
std::optional<std::size_t> build_tftp_data(std::span<u8> out, u16 block, std::span<const u8> data);
std::optional<std::size_t> build_tftp_ack(std::span<u8> out, u16 block);
std::optional<std::size_t> build_tftp_error(std::span<u8> out, TftpErrorCode code, std::string_view message);
std::optional<std::size_t> build_tftp_oack(std::span<u8> out, std::span<const TftpOption> options);

}  // namespace reel::wire
