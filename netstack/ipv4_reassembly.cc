#include "netstack/ipv4_reassembly.h"

#include <algorithm>

#include "netstack/wire/checksum.h"
#include "netstack/wire/ipv4.h"

namespace reel {

namespace {

constexpr u32 kMaxDatagram = 65535;
constexpr std::size_t kIcmpQuotePayload = 8;

void put16(std::vector<u8>& b, std::size_t at, u16 v) {
  b[at] = static_cast<u8>(v >> 8);
  b[at + 1] = static_cast<u8>(v);
}

}  // namespace

void Ipv4Reassembly::discard(std::map<Key, Datagram>::iterator it) {
  m_bytes -= it->second.bytes;
  m_datagrams.erase(it);
}

std::optional<std::vector<u8>> Ipv4Reassembly::add(const wire::Ipv4Packet& fragment, u64 now_ns) {
  ++m_counters.fragments;
  const auto payload = fragment.payload();
  const u32 offset = fragment.fragment_offset_bytes();
  const u32 end = offset + static_cast<u32>(payload.size());
  const bool last = !fragment.more_fragments();
  // Every fragment but the last carries a multiple of 8 bytes (RFC 791),
  // and an empty non-final fragment adds nothing but bookkeeping.
  if (!last && (payload.empty() || payload.size() % 8 != 0)) {
    ++m_counters.dropped_bad_fragment;
    return std::nullopt;
  }
  const Key key{fragment.source(), fragment.destination(), fragment.protocol(), fragment.identification()};
  auto it = m_datagrams.find(key);
  if (fragment.header_length() + end > kMaxDatagram) {
    ++m_counters.dropped_too_long;
    if (it != m_datagrams.end()) discard(it);
    return std::nullopt;
  }
  if (it == m_datagrams.end()) {
    if (m_datagrams.size() >= m_limits.max_datagrams || m_bytes + payload.size() > m_limits.max_bytes) {
      ++m_counters.dropped_memory;
      return std::nullopt;
    }
    Datagram d;
    d.deadline_ns = now_ns + m_limits.timeout_ns;
    it = m_datagrams.emplace(key, std::move(d)).first;
  }
  Datagram& d = it->second;

  // The end of the datagram, once known, bounds every fragment; two
  // different ends are a contradiction.
  if (last) {
    if ((d.total_payload && *d.total_payload != end) ||
        (!d.pieces.empty() &&
         std::prev(d.pieces.end())->first + std::prev(d.pieces.end())->second.size() > end)) {
      ++m_counters.dropped_bad_fragment;
      discard(it);
      return std::nullopt;
    }
  } else if (d.total_payload && end > *d.total_payload) {
    ++m_counters.dropped_bad_fragment;
    discard(it);
    return std::nullopt;
  }

  // Overlap check against the neighbours (pieces never overlap each other).
  auto next = d.pieces.lower_bound(offset);
  if (next != d.pieces.end() && next->first == offset && next->second.size() == payload.size() &&
      std::equal(payload.begin(), payload.end(), next->second.begin())) {
    ++m_counters.duplicates;
    return std::nullopt;
  }
  const bool overlaps_next = next != d.pieces.end() && next->first < end;
  bool overlaps_prev = false;
  if (next != d.pieces.begin()) {
    const auto prev = std::prev(next);
    overlaps_prev = prev->first + prev->second.size() > offset;
  }
  if (overlaps_next || overlaps_prev) {
    ++m_counters.dropped_overlap;
    discard(it);
    return std::nullopt;
  }
  if (d.pieces.size() >= m_limits.max_fragments) {
    ++m_counters.dropped_too_many_fragments;
    discard(it);
    return std::nullopt;
  }
  if (m_bytes + payload.size() > m_limits.max_bytes) {
    ++m_counters.dropped_memory;
    discard(it);
    return std::nullopt;
  }

  d.pieces.emplace(offset, std::vector<u8>(payload.begin(), payload.end()));
  d.bytes += payload.size();
  m_bytes += payload.size();
  if (last) d.total_payload = end;
  if (offset == 0) {
    const auto header = fragment.header();
    d.first_header.assign(header.begin(), header.end());
    const auto quote = fragment.bytes().first(header.size() + std::min(payload.size(), kIcmpQuotePayload));
    d.first_quote.assign(quote.begin(), quote.end());
  }
  return try_complete(it);
}

std::optional<std::vector<u8>> Ipv4Reassembly::try_complete(std::map<Key, Datagram>::iterator it) {
  Datagram& d = it->second;
  if (!d.total_payload || d.first_header.empty()) return std::nullopt;
  u32 covered = 0;
  for (const auto& [off, bytes] : d.pieces) {
    if (off != covered) return std::nullopt;  // a hole
    covered += static_cast<u32>(bytes.size());
  }
  if (covered != *d.total_payload) return std::nullopt;

  std::vector<u8> out = d.first_header;
  out.reserve(out.size() + covered);
  for (const auto& [off, bytes] : d.pieces) out.insert(out.end(), bytes.begin(), bytes.end());
  put16(out, 2, static_cast<u16>(out.size()));
  out[6] &= 0x40;  // keep DF, clear MF and the offset
  out[7] = 0;
  put16(out, 10, 0);
  put16(out, 10, wire::internet_checksum(std::span<const u8>(out).first(d.first_header.size())));
  ++m_counters.reassembled;
  discard(it);
  return out;
}

std::vector<std::vector<u8>> Ipv4Reassembly::expire(u64 now_ns) {
  std::vector<std::vector<u8>> quotes;
  for (auto it = m_datagrams.begin(); it != m_datagrams.end();) {
    if (it->second.deadline_ns > now_ns) {
      ++it;
      continue;
    }
    ++m_counters.dropped_timeout;
    if (!it->second.first_quote.empty()) quotes.push_back(std::move(it->second.first_quote));
    auto victim = it++;
    discard(victim);
  }
  return quotes;
}

std::optional<u64> Ipv4Reassembly::next_deadline() const {
  std::optional<u64> best;
  for (const auto& [key, d] : m_datagrams)
    if (!best || d.deadline_ns < *best) best = d.deadline_ns;
  return best;
}

}  // namespace reel
