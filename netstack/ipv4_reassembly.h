#pragma once

// IPv4 reassembly (RFC 791 section 3.2, RFC 815's hole bookkeeping) for the
// gateway, with bounded memory: a few datagrams at a time, a byte budget
// over all of them, a cap on fragments per datagram and a timeout on the
// virtual clock. Overlapping fragments other than exact repeats discard the
// whole datagram, as Linux does since its FragmentSmack fixes: an overlap is
// either an attack or a broken sender, and guessing which bytes win is how
// reassemblers have been fooled.

#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/tuple.hpp>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

namespace wire {
class Ipv4Packet;
}

class Ipv4Reassembly {
 public:
  struct Limits {
    std::size_t max_datagrams = 16;      // in reassembly at once
    std::size_t max_bytes = 256 * 1024;  // fragment payload held over all datagrams
    std::size_t max_fragments = 64;      // per datagram
    u64 timeout_ns = 30'000'000'000;     // Linux's ipfrag_time
  };

  struct Counters {
    u64 fragments = 0;
    u64 reassembled = 0;
    u64 duplicates = 0;        // an exact repeat of a fragment already held (ignored)
    u64 dropped_overlap = 0;   // datagrams discarded for overlapping fragments
    u64 dropped_too_long = 0;  // datagrams that would exceed 65535 bytes
    u64 dropped_bad_fragment =
        0;  // a non-final fragment whose length is not a multiple of 8, or contradicting ends
    u64 dropped_too_many_fragments = 0;
    u64 dropped_memory = 0;   // a fragment refused for the datagram or byte budget
    u64 dropped_timeout = 0;  // datagrams that never completed
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(fragments), REEL_FIELD(reassembled), REEL_FIELD(duplicates), REEL_FIELD(dropped_overlap),
         REEL_FIELD(dropped_too_long), REEL_FIELD(dropped_bad_fragment),
         REEL_FIELD(dropped_too_many_fragments), REEL_FIELD(dropped_memory), REEL_FIELD(dropped_timeout));
    }
  };

  Ipv4Reassembly() = default;
  explicit Ipv4Reassembly(const Limits& limits) : m_limits(limits) {}

  // Takes one checked fragment. Returns the whole datagram (the first
  // fragment's header with MF and offset cleared, total length and checksum
  // rewritten, then the payload) once every piece is there.
  std::optional<std::vector<u8>> add(const wire::Ipv4Packet& fragment, u64 now_ns);

  // Discards datagrams whose time is up. For each one whose first fragment
  // had arrived, returns that fragment's header plus up to 8 payload bytes,
  // for an ICMP time exceeded (fragment reassembly) message (RFC 792).
  std::vector<std::vector<u8>> expire(u64 now_ns);
  std::optional<u64> next_deadline() const;

  std::size_t pending() const { return m_datagrams.size(); }
  std::size_t bytes_held() const { return m_bytes; }
  const Counters& counters() const { return m_counters; }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_datagrams), REEL_FIELD(m_bytes), REEL_FIELD(m_counters));
  }

 private:
  // (source, destination, protocol, identification), RFC 791's key.
  using Key = std::tuple<u32, u32, u8, u16>;
  struct Datagram {
    u64 deadline_ns = 0;
    std::vector<u8> first_header;           // from the offset-0 fragment; empty until it arrives
    std::vector<u8> first_quote;            // that header plus 8 payload bytes, for ICMP
    std::optional<u32> total_payload;       // known once the last fragment (MF=0) arrives
    std::map<u32, std::vector<u8>> pieces;  // payload offset -> bytes
    std::size_t bytes = 0;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(deadline_ns), REEL_FIELD(first_header), REEL_FIELD(first_quote),
         REEL_FIELD(total_payload), REEL_FIELD(pieces), REEL_FIELD(bytes));
    }
  };

  void discard(std::map<Key, Datagram>::iterator it);
  std::optional<std::vector<u8>> try_complete(std::map<Key, Datagram>::iterator it);

  Limits m_limits;
  std::map<Key, Datagram> m_datagrams;
  std::size_t m_bytes = 0;
  Counters m_counters;
};

}  // namespace reel
