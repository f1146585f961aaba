#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

class VirtualClock;

// The only way to make something happen later. Timers are registered once
// at machine construction (so their ids are stable and the queue's state is
// plain values); arming gives a deadline and a sequence number, and due
// timers fire in (deadline, sequence) order.
class Scheduler {
 public:
  using TimerId = u32;
  using Callback = std::function<void()>;

  TimerId add_timer(std::string name, Callback callback);

  // (Re)arms a timer. A deadline in the past fires at the next run_due().
  void arm(TimerId id, u64 deadline_ns);
  void cancel(TimerId id);
  bool armed(TimerId id) const { return m_timers[id].armed; }
  u64 deadline(TimerId id) const { return m_timers[id].deadline_ns; }

  std::optional<u64> next_deadline() const;

  // Fires every timer whose deadline is <= now, in order. Callbacks may arm
  // timers again; one that re-arms in the past fires again in this call.
  void run_due(u64 now_ns);

  template <class Archive>
  void serialize(Archive& ar) {
    std::vector<TimerState> states;
    for (const auto& t : m_timers) states.push_back(TimerState{t.name, t.armed, t.deadline_ns, t.seq});
    ar(cereal::make_nvp("timers", states), REEL_FIELD(m_next_seq));
    if constexpr (Archive::is_loading::value) {
      for (size_t i = 0; i < states.size() && i < m_timers.size(); ++i) {
        m_timers[i].armed = states[i].armed;
        m_timers[i].deadline_ns = states[i].deadline_ns;
        m_timers[i].seq = states[i].seq;
      }
    }
  }

  struct TimerState {
    std::string name;
    bool armed = false;
    u64 deadline_ns = 0;
    u64 seq = 0;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(name), REEL_FIELD(armed), REEL_FIELD(deadline_ns), REEL_FIELD(seq));
    }
  };

 private:
  struct Timer {
    std::string name;
    Callback callback;
    bool armed = false;
    u64 deadline_ns = 0;
    u64 seq = 0;
  };
  std::vector<Timer> m_timers;
  u64 m_next_seq = 0;
};

}  // namespace reel
