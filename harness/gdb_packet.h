#pragma once

// The gdb remote serial protocol's framing and argument syntax, apart from
// any machine so it can be unit-tested and fuzzed on its own
// (harness/gdb_stub.cc uses it). A packet is "$payload#cc": cc is the
// modulo-256 sum of the payload bytes in two hex digits, '}' escapes the
// next byte (XOR 0x20) and "X*n" repeats X n-29 more times. Outside a
// packet, '+' and '-' acknowledge and 0x03 asks to interrupt.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/types.h"

namespace reel::gdb {

// The largest payload accepted (and advertised as PacketSize): big enough
// for an 'X' of a few KiB of memory, small enough that a peer sending
// garbage cannot grow the buffer without bound.
inline constexpr size_t kMaxPacket = 0x4000;

struct PacketEvent {
  enum class Kind : u8 {
    packet,        // a well-formed packet: payload holds it (escapes not undone)
    ack,           // '+'
    nack,          // '-': resend the last reply
    interrupt,     // 0x03 (Ctrl-C)
    bad_checksum,  // answer '-' so the peer resends
    overlong,      // longer than kMaxPacket: dropped, answer '-'
  };
  Kind kind = Kind::packet;
  std::string payload;
};

// Splits the byte stream from the debugger into events. Bytes between
// packets other than '+', '-' and 0x03 are ignored, as gdb's own stubs do.
class PacketReader {
 public:
  void feed(std::span<const u8> bytes, std::vector<PacketEvent>& out);
  void feed(std::string_view bytes, std::vector<PacketEvent>& out) {
    feed(std::span<const u8>(reinterpret_cast<const u8*>(bytes.data()), bytes.size()), out);
  }

 private:
  enum class State : u8 { idle, payload, check_hi, check_lo };
  State m_state = State::idle;
  std::string m_payload;
  u8 m_sum = 0;
  int m_check_hi = 0;  // -1: not a hex digit
  bool m_overlong = false;
};

// "$payload#cc" with '$', '#', '}' and '*' escaped. With run_length,
// repeated characters are compressed as gdb allows in replies.
std::string frame_packet(std::string_view payload, bool run_length = false);
// gdb's run-length encoding of a reply (never produces '#' or '$' counts).
std::string run_length_encode(std::string_view text);
// Undoes run-length encoding; nullopt when a '*' has nothing to repeat.
std::optional<std::string> run_length_decode(std::string_view text);
// Undoes '}' escapes (binary data of 'X'); nullopt on a trailing '}'.
std::optional<std::string> unescape_binary(std::string_view text);
u8 checksum(std::string_view payload);

// Hex helpers: lower-case output; input of either case.
std::string to_hex(std::span<const u8> bytes);
std::string to_hex(std::string_view text);
std::optional<std::vector<u8>> from_hex(std::string_view hex);
// A hex number of at most 16 digits (at least one).
std::optional<u64> parse_hex(std::string_view hex);
// A 32-bit value as 8 hex digits in target (little-endian) byte order.
std::string hex_le32(u32 value);
std::optional<u32> parse_hex_le32(std::string_view hex);

// "ADDR,LENGTH" (m, and the first part of M and X).
std::optional<std::pair<u64, u64>> parse_address_length(std::string_view text);

struct MemoryWrite {
  u64 address = 0;
  std::vector<u8> bytes;
};
// "M ADDR,LENGTH:HEX" and "X ADDR,LENGTH:BINARY" (text after the letter);
// the data must be exactly LENGTH bytes.
std::optional<MemoryWrite> parse_memory_write_hex(std::string_view text);
std::optional<MemoryWrite> parse_memory_write_binary(std::string_view text);

// "Ztype,addr,kind" / "ztype,addr,kind" (text after the letter); type 0..4.
struct BreakpointRequest {
  unsigned type = 0;
  u64 address = 0;
  u64 kind = 0;  // length for watchpoints
};
std::optional<BreakpointRequest> parse_breakpoint(std::string_view text);

// "vCont;ACTION[:THREAD];..." (text after "vCont"). Actions: c, s, C sig,
// S sig, t. With one thread, the first action that applies to it wins.
struct VContAction {
  char action = 'c';  // 'c', 's' (C and S map to them: signals are ignored) or 't'
  std::optional<std::string> thread;
};
std::optional<std::vector<VContAction>> parse_vcont(std::string_view text);

// "qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH" (the whole payload).
struct XferRead {
  std::string object;
  std::string annex;
  u64 offset = 0;
  u64 length = 0;
};
std::optional<XferRead> parse_xfer_read(std::string_view payload);
// A qXfer reply: 'm' + chunk when more follows, 'l' + chunk at the end.
std::string xfer_reply(std::string_view document, u64 offset, u64 length);

}  // namespace reel::gdb
