#pragma once

#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

// The machine's one source of randomness (determinism rule 5). xoshiro256**
// seeded through splitmix64 from the seed in the journal header.
class Prng {
 public:
  explicit Prng(u64 seed = 0) { reseed(seed); }

  void reseed(u64 seed) {
    for (u64& word : m_s) {
      seed += 0x9e3779b97f4a7c15ull;
      u64 z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      word = z ^ (z >> 31);
    }
  }

  u64 next() {
    const u64 result = rotl(m_s[1] * 5, 7) * 9;
    const u64 t = m_s[1] << 17;
    m_s[2] ^= m_s[0];
    m_s[3] ^= m_s[1];
    m_s[1] ^= m_s[2];
    m_s[0] ^= m_s[3];
    m_s[2] ^= t;
    m_s[3] = rotl(m_s[3], 45);
    return result;
  }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("state", m_s));
  }

 private:
  static u64 rotl(u64 x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<u64, 4> m_s{};
};

}  // namespace reel
