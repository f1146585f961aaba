#include "netstack/wire/checksum.h"

#include <bit>
#include <cassert>
#include <cstring>

namespace reel::wire {

namespace {

// The bulk of a sum, eight bytes at a time in the host's byte order: a ones'
// complement sum is the same up to a byte swap whatever the order the words
// are read in (RFC 1071 section 2(B)), so it is folded, swapped to network
// order once and returned. Two 32-bit halves per step keep every carry in
// the u64 for any input below 2^31 steps. Covers the whole eight-byte words
// of [p, p + n) and sets `done` to their length; with kCopy each word is
// also stored to q, so a copy and its sum take one pass.
template <bool kCopy>
u64 sum_words(const u8* p, std::size_t n, u8* q, std::size_t& done) {
  u64 native = 0, native2 = 0;
  std::size_t i = 0;
  // Two independent accumulators so that consecutive loads do not wait on
  // each other's additions.
  for (; i + 16 <= n; i += 16) {
    u64 v, w;
    std::memcpy(&v, p + i, sizeof v);
    std::memcpy(&w, p + i + 8, sizeof w);
    if constexpr (kCopy) {
      std::memcpy(q + i, &v, sizeof v);
      std::memcpy(q + i + 8, &w, sizeof w);
    }
    native += (v & 0xffffffffu) + (v >> 32);
    native2 += (w & 0xffffffffu) + (w >> 32);
  }
  for (; i + 8 <= n; i += 8) {
    u64 v;
    std::memcpy(&v, p + i, sizeof v);
    if constexpr (kCopy) std::memcpy(q + i, &v, sizeof v);
    native += (v & 0xffffffffu) + (v >> 32);
  }
  done = i;
  native = (native & 0xffffffffu) + (native >> 32) + (native2 & 0xffffffffu) + (native2 >> 32);
  while (native >> 16) native = (native & 0xffff) + (native >> 16);
  if constexpr (std::endian::native == std::endian::little) native = ((native & 0xff) << 8) | (native >> 8);
  return native;
}

}  // namespace

void InternetChecksum::add(std::span<const u8> bytes) {
  std::size_t i = 0;
  if (m_has_pending && !bytes.empty()) {
    m_sum += (u32{m_pending} << 8) | bytes[0];
    m_has_pending = false;
    i = 1;
  }
  if (bytes.size() - i >= 8) {
    std::size_t done = 0;
    m_sum += sum_words<false>(bytes.data() + i, bytes.size() - i, nullptr, done);
    i += done;
  }
  // A u64 accumulator cannot overflow for any frame-sized input: each word
  // adds at most 0xffff, so folding once at the end is enough.
  for (; i + 1 < bytes.size(); i += 2) m_sum += (u32{bytes[i]} << 8) | bytes[i + 1];
  if (i < bytes.size()) {
    m_pending = bytes[i];
    m_has_pending = true;
  }
}

void InternetChecksum::add_copy(std::span<u8> destination, std::span<const u8> source) {
  assert(destination.size() >= source.size());
  std::size_t i = 0;
  if (!m_has_pending) m_sum += sum_words<true>(source.data(), source.size(), destination.data(), i);
  // The last bytes (or all of them after an odd piece) the plain way.
  std::memcpy(destination.data() + i, source.data() + i, source.size() - i);
  add(std::span<const u8>(destination).subspan(i, source.size() - i));
}

void InternetChecksum::add_folded(u16 sum) {
  assert(!m_has_pending);
  m_sum += sum;
}

void InternetChecksum::add_u16(u16 word) {
  if (!m_has_pending) {
    m_sum += word;  // word-aligned: the common case, summed directly
    return;
  }
  const u8 bytes[2] = {static_cast<u8>(word >> 8), static_cast<u8>(word)};
  add(bytes);
}

void InternetChecksum::add_u32(u32 value) {
  add_u16(static_cast<u16>(value >> 16));
  add_u16(static_cast<u16>(value));
}

void InternetChecksum::add_ipv4_pseudo_header(u32 source, u32 destination, u8 protocol, u16 length) {
  if (!m_has_pending) {
    // Every segment's checksum starts here: six words straight into the sum.
    m_sum += u64{source >> 16} + (source & 0xffff) + (destination >> 16) + (destination & 0xffff) + protocol +
             length;
    return;
  }
  add_u32(source);
  add_u32(destination);
  add_u16(protocol);  // a zero byte, then the protocol
  add_u16(length);
}

u16 InternetChecksum::sum() const {
  u64 s = m_sum;
  if (m_has_pending) s += u32{m_pending} << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<u16>(s);
}

u16 internet_checksum(std::span<const u8> bytes) {
  InternetChecksum c;
  c.add(bytes);
  return c.checksum();
}

bool internet_checksum_ok(std::span<const u8> bytes) {
  InternetChecksum c;
  c.add(bytes);
  return c.sum() == 0xffff;
}

u16 checksum_update(u16 old_checksum, u16 old_word, u16 new_word) {
  u32 s = static_cast<u16>(~old_checksum);
  s += static_cast<u16>(~old_word);
  s += new_word;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<u16>(~s);
}

u16 checksum_update32(u16 old_checksum, u32 old_value, u32 new_value) {
  const u16 c =
      checksum_update(old_checksum, static_cast<u16>(old_value >> 16), static_cast<u16>(new_value >> 16));
  return checksum_update(c, static_cast<u16>(old_value), static_cast<u16>(new_value));
}

}  // namespace reel::wire
