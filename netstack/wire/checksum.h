#pragma once

// The Internet checksum (RFC 1071) shared by IPv4, ICMP, UDP and TCP, its
// incremental update (RFC 1624), and the big-endian loads and stores every
// wire view is built on.

#include <cstddef>
#include <span>

#include "core/types.h"

namespace reel::wire {

// Network byte order. Callers have checked the bounds; these only convert.
inline u16 load_be16(const u8* p) { return static_cast<u16>((u16{p[0]} << 8) | p[1]); }
inline u32 load_be32(const u8* p) {
  return (u32{p[0]} << 24) | (u32{p[1]} << 16) | (u32{p[2]} << 8) | u32{p[3]};
}
inline void store_be16(u8* p, u16 v) {
  p[0] = static_cast<u8>(v >> 8);
  p[1] = static_cast<u8>(v);
}
inline void store_be32(u8* p, u32 v) {
  p[0] = static_cast<u8>(v >> 24);
  p[1] = static_cast<u8>(v >> 16);
  p[2] = static_cast<u8>(v >> 8);
  p[3] = static_cast<u8>(v);
}

// A running one's-complement sum of 16-bit big-endian words. Bytes may be
// added in pieces of any length: an odd piece leaves its last byte pending as
// the high half of the next word, so the result equals summing the
// concatenation (RFC 1071 4.1, with a final zero pad byte when odd).
class InternetChecksum {
 public:
  void add(std::span<const u8> bytes);
  // Copies `source` to the start of `destination` (at least as long, not
  // overlapping) and adds it, in one pass over the bytes: a segment's
  // payload is summed as it is placed in the frame.
  void add_copy(std::span<u8> destination, std::span<const u8> source);
  // Adds another piece's sum() as if its bytes came next: right when that
  // piece starts on a word boundary (this sum has no odd byte pending) and
  // nothing follows it, since its own odd last byte was padded with zero.
  void add_folded(u16 sum);
  void add_u16(u16 word);
  void add_u32(u32 value);  // two words, high first
  // The pseudo-header UDP and TCP sum over (RFC 768, RFC 9293 3.1):
  // addresses host-order, `length` the transport header + payload length.
  void add_ipv4_pseudo_header(u32 source, u32 destination, u8 protocol, u16 length);

  // The folded sum (not complemented). A message whose checksum field is
  // correct sums to 0xffff.
  u16 sum() const;
  // The value to store in a checksum field: the complement of sum().
  u16 checksum() const { return static_cast<u16>(~sum()); }

 private:
  u64 m_sum = 0;
  u8 m_pending = 0;
  bool m_has_pending = false;
};

// The checksum of `bytes` alone: RFC 1071's example 00 01 f2 03 f4 f5 f6 f7
// gives 0x220d.
u16 internet_checksum(std::span<const u8> bytes);

// True when `bytes` (a header or message that includes its own checksum
// field) sums to 0xffff, i.e. the stored checksum is right.
bool internet_checksum_ok(std::span<const u8> bytes);

// RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered
// data changed from `old_word` to `new_word`, HC' = ~(~HC + ~m + m').
// Unlike eqn. 2 it never yields 0xffff from a correct sum (RFC 1624 3).
u16 checksum_update(u16 old_checksum, u16 old_word, u16 new_word);
// The same for a 32-bit field (an address): two word updates.
u16 checksum_update32(u16 old_checksum, u32 old_value, u32 new_value);

}  // namespace reel::wire
