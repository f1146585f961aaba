#include "harness/progress_line.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>

#include "core/virtual_clock.h"
#include "replay/journal.h"

namespace reel {

namespace {

// A few redraws per second keep the line alive without costing the replay
// anything measurable or flooding a slow terminal.
constexpr std::chrono::milliseconds kMinInterval{250};

std::string count_text(u64 n) {
  char buf[32];
  if (n >= 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.2fG", static_cast<double>(n) / 1e9);
  } else if (n >= 1'000'000) {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
  } else if (n >= 10'000) {
    std::snprintf(buf, sizeof buf, "%.1fk", static_cast<double>(n) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRIu64, n);
  }
  return buf;
}

}  // namespace

ProgressLine::ProgressLine(std::string label, std::FILE* out, Mode mode,
                           std::chrono::milliseconds first_delay)
    : m_label(std::move(label)),
      m_out(out),
      m_start(std::chrono::steady_clock::now()),
      m_first_delay(first_delay) {
  switch (mode) {
    case Mode::always:
      m_enabled = out != nullptr;
      break;
    case Mode::never:
      m_enabled = false;
      break;
    case Mode::automatic:
      m_enabled = out != nullptr && isatty(fileno(out)) == 1;
      break;
  }
}

ProgressLine::~ProgressLine() { clear(); }

std::string ProgressLine::format(const std::string& label, const Sample& s) {
  const double fraction = std::clamp(s.fraction, 0.0, 1.0);
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: %s instr, %.3f s virtual, %" PRIu64 "/%" PRIu64 " events, %d%%",
                label.c_str(), count_text(s.icount).c_str(), static_cast<double>(s.time_ns) / 1e9, s.events,
                s.events_total, static_cast<int>(fraction * 100.0));
  return buf;
}

ProgressLine::Sample ProgressLine::replay_sample(const JournalReader& journal, u64 events_consumed,
                                                 const VirtualClock* clock) {
  Sample s;
  s.icount = clock ? clock->icount() : 0;
  s.time_ns = clock ? clock->now_ns() : 0;
  s.events = events_consumed;
  s.events_total = journal.size();
  // The header (and the files embedded in it) is read before the machine
  // starts: the share is of the bytes after it, the events themselves.
  const auto& events = journal.events();
  const u64 size = journal.file_size();
  const u64 base = events.empty() ? 0 : std::min(events.front().offset, size);
  const u64 at = events_consumed < events.size() ? std::min(events[events_consumed].offset, size) : size;
  s.fraction = size > base ? static_cast<double>(at - base) / static_cast<double>(size - base) : 1.0;
  return s;
}

void ProgressLine::update(const Sample& sample) {
  if (!m_enabled) return;
  const auto now = std::chrono::steady_clock::now();
  if (!m_drawn && now - m_start < m_first_delay) return;
  if (m_drawn && now - m_last < kMinInterval) return;
  m_last = now;
  const std::string line = format(m_label, sample);
  // Pad over the tail of a longer previous line instead of clearing
  // first, which would flicker.
  const size_t pad = m_width > line.size() ? m_width - line.size() : 0;
  std::fprintf(m_out, "\r%s%*s", line.c_str(), static_cast<int>(pad), "");
  std::fflush(m_out);
  m_width = line.size();
  m_drawn = true;
}

void ProgressLine::clear() {
  if (!m_enabled || !m_drawn) return;
  std::fprintf(m_out, "\r%*s\r", static_cast<int>(m_width), "");
  std::fflush(m_out);
  m_drawn = false;
  m_width = 0;
}

}  // namespace reel
