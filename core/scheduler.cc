#include "core/scheduler.h"

#include <cassert>

namespace reel {

Scheduler::TimerId Scheduler::add_timer(std::string name, Callback callback) {
  m_timers.push_back(Timer{std::move(name), std::move(callback)});
  return static_cast<TimerId>(m_timers.size() - 1);
}

void Scheduler::arm(TimerId id, u64 deadline_ns) {
  assert(id < m_timers.size());
  Timer& t = m_timers[id];
  t.armed = true;
  t.deadline_ns = deadline_ns;
  t.seq = m_next_seq++;
}

void Scheduler::cancel(TimerId id) {
  assert(id < m_timers.size());
  m_timers[id].armed = false;
}

std::optional<u64> Scheduler::next_deadline() const {
  std::optional<u64> best;
  for (const Timer& t : m_timers) {
    if (t.armed && (!best || t.deadline_ns < *best)) best = t.deadline_ns;
  }
  return best;
}

void Scheduler::run_due(u64 now_ns) {
  // Timers are few (one or two per device), so a scan beats a heap and keeps
  // the order obviously deterministic.
  for (;;) {
    Timer* due = nullptr;
    for (Timer& t : m_timers) {
      if (!t.armed || t.deadline_ns > now_ns) continue;
      if (!due || t.deadline_ns < due->deadline_ns ||
          (t.deadline_ns == due->deadline_ns && t.seq < due->seq)) {
        due = &t;
      }
    }
    if (!due) return;
    due->armed = false;
    due->callback();
  }
}

}  // namespace reel
