#pragma once

#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

// Virtual time. It advances with retired guest instructions, (1 << shift) ns
// each like QEMU's -icount shift=N, and jumps forward while the CPU idles.
// Nothing below harness/ reads the host clock.
class VirtualClock {
 public:
  explicit VirtualClock(unsigned shift = 0) : m_shift(shift) {}

  unsigned shift() const { return m_shift; }
  // Instructions retired so far. An instruction that observes the outside
  // sees the count of instructions retired before it.
  u64 icount() const { return m_icount; }
  // The CPU increments this directly after every retired instruction.
  u64& icount_ref() { return m_icount; }
  void set_icount(u64 icount) { m_icount = icount; }

  u64 now_ns() const { return (m_icount << m_shift) + m_idle_ns; }
  u64 idle_ns() const { return m_idle_ns; }

  // Moves virtual time to `ns` while no instruction retires (the CPU is
  // halted). Never moves backwards.
  void advance_idle_to(u64 ns) {
    if (ns > now_ns()) m_idle_ns += ns - now_ns();
  }

  // How many more instructions must retire until now_ns() >= deadline_ns.
  u64 instructions_until(u64 deadline_ns) const {
    const u64 now = now_ns();
    if (deadline_ns <= now) return 0;
    const u64 delta = deadline_ns - now;
    const u64 per = u64{1} << m_shift;
    return (delta + per - 1) >> m_shift;
  }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_shift), REEL_FIELD(m_icount), REEL_FIELD(m_idle_ns));
  }

 private:
  unsigned m_shift = 0;
  u64 m_icount = 0;
  u64 m_idle_ns = 0;
};

}  // namespace reel
