#pragma once

// A one-line progress report for long replays and checks: instructions,
// virtual time, journal events and the share of the journal done,
// rewritten in place with '\r' on a terminal at most a few times per
// second, and silent when the stream is not a terminal (CI logs, pipes),
// where a line per update would only be noise.

#include <chrono>
#include <cstdio>
#include <string>

#include "core/types.h"

namespace reel {

class JournalReader;
class VirtualClock;

class ProgressLine {
 public:
  struct Sample {
    u64 icount = 0;
    u64 time_ns = 0;  // virtual
    u64 events = 0;   // journal events consumed
    u64 events_total = 0;
    double fraction = 0;  // of the journal done, 0..1
  };

  // automatic shows the line only when `out` is a terminal.
  enum class Mode : u8 { automatic, always, never };

  // Nothing is drawn before `first_delay` has passed, so short runs show
  // no line that flashes and vanishes.
  explicit ProgressLine(std::string label, std::FILE* out = stderr, Mode mode = Mode::automatic,
                        std::chrono::milliseconds first_delay = std::chrono::milliseconds(500));
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool enabled() const { return m_enabled; }
  // Cheap to call often: reads the host clock and draws only when the last
  // drawing is older than the minimum interval.
  void update(const Sample& sample);
  // Erases the line, so that results printed next start on a clean line.
  void clear();

  // "label: 12.3M instr, 1.250 s virtual, 345/1000 events, 34%"
  static std::string format(const std::string& label, const Sample& sample);

  // Where a replay of `journal` stands after `events_consumed` events
  // (ReplayingHostIO::events_consumed()); the percentage is by the bytes
  // of the journal's events, since one event may carry a whole file.
  // `clock` may be null.
  static Sample replay_sample(const JournalReader& journal, u64 events_consumed, const VirtualClock* clock);

 private:
  std::string m_label;
  std::FILE* m_out;
  bool m_enabled;
  bool m_drawn = false;
  size_t m_width = 0;  // of the last line drawn, to blank it out
  std::chrono::steady_clock::time_point m_start;
  std::chrono::milliseconds m_first_delay;
  std::chrono::steady_clock::time_point m_last{};
};

}  // namespace reel
