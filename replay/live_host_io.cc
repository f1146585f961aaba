#include "replay/live_host_io.h"

#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "core/virtual_clock.h"

namespace reel {

struct LiveHostIO::Console {
  ConsoleSpec spec;
  int out_fd = -1;
  bool owns_fd = false;
  bool input_live = false;
  XXH3_state_t* digest = nullptr;
  u64 total = 0;
  ~Console() {
    if (owns_fd && out_fd >= 0) ::close(out_fd);
    if (digest) XXH3_freeState(digest);
  }
};

namespace {

u64 monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<u64>(ts.tv_sec) * 1000000000ull + static_cast<u64>(ts.tv_nsec);
}

void write_all(int fd, std::span<const u8> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a closed pipe or full disk loses console output, not the run
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace

LiveHostIO::LiveHostIO(Options options) : m_options(options) {}
LiveHostIO::~LiveHostIO() = default;

void LiveHostIO::attach(const VirtualClock* clock, std::function<u64()> state_hasher) {
  m_clock = clock;
  m_hasher = std::move(state_hasher);
}

i64 LiveHostIO::host_time_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<i64>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

HostFile LiveHostIO::read_host_file(const std::string& path) {
  HostFile f;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    f.error = std::strerror(errno);
    return f;
  }
  f.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    f.error = "read error";
    f.bytes.clear();
    return f;
  }
  f.ok = true;
  return f;
}

HostFile LiveHostIO::read_file(const std::string& path) { return read_host_file(path); }

ChannelId LiveHostIO::open_console(const ConsoleSpec& spec) {
  auto c = std::make_unique<Console>();
  c->spec = spec;
  c->digest = XXH3_createState();
  XXH3_64bits_reset(c->digest);
  switch (spec.kind) {
    case ConsoleSpec::Kind::stdio:
      c->out_fd = 1;
      c->input_live = spec.wants_input;
      break;
    case ConsoleSpec::Kind::file:
      c->out_fd = ::open(spec.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (c->out_fd < 0) throw HostError(spec.name + " file:" + spec.path + ": " + std::strerror(errno));
      c->owns_fd = true;
      break;
    case ConsoleSpec::Kind::none:
      break;
  }
  // Only one console can own stdin.
  if (c->input_live) {
    for (const auto& other : m_consoles) {
      if (other->input_live) c->input_live = false;
    }
  }
  m_consoles.push_back(std::move(c));
  return static_cast<ChannelId>(m_consoles.size() - 1);
}

void LiveHostIO::console_write(ChannelId channel, std::span<const u8> bytes) {
  if (channel >= m_consoles.size()) return;
  Console& c = *m_consoles[channel];
  XXH3_64bits_update(c.digest, bytes.data(), bytes.size());
  c.total += bytes.size();
  if (c.out_fd >= 0) write_all(c.out_fd, bytes);
}

LiveHostIO::Digest LiveHostIO::console_digest(ChannelId channel) const {
  const Console& c = *m_consoles.at(channel);
  return Digest{c.total, XXH3_64bits_digest(c.digest)};
}

bool LiveHostIO::has_live_inputs() const {
  for (const auto& c : m_consoles) {
    if (c->input_live) return true;
  }
  return false;
}

void LiveHostIO::poll_inputs(InputSink* sink, int timeout_ms) {
  for (ChannelId id = 0; id < m_consoles.size(); ++id) {
    Console& c = *m_consoles[id];
    if (!c.input_live) continue;
    pollfd p{0, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r <= 0) continue;
    u8 buf[4096];
    const ssize_t n = ::read(0, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
      c.input_live = false;  // EOF: stdin is no longer a source
      continue;
    }
    if (n > 0) m_pending_inputs.emplace_back(id, std::vector<u8>(buf, buf + n));
  }
  if (!sink) return;
  for (auto& [id, bytes] : m_pending_inputs) {
    on_input(id, bytes);
    sink->deliver_input(id, bytes);
  }
  m_pending_inputs.clear();
}

u64 LiveHostIO::next_stop_icount() {
  const u64 now = m_clock ? m_clock->icount() : 0;
  return now + m_options.poll_interval;
}

bool LiveHostIO::boundary(InputSink& sink) {
  poll_inputs(&sink, 0);
  return true;
}

std::optional<u64> LiveHostIO::idle(std::optional<u64> deadline_ns) {
  m_last_idle_waited = false;
  if (!has_live_inputs() || (!m_options.pacing && deadline_ns)) return deadline_ns;
  // Wait on real time, 1 virtual ns per real ns, until the deadline or
  // until input arrives; the boundary() that follows delivers it.
  const u64 now_virtual = m_clock->now_ns();
  const u64 limit = deadline_ns ? (*deadline_ns > now_virtual ? *deadline_ns - now_virtual : 0) : kNever;
  const u64 start = monotonic_ns();
  u64 elapsed = 0;
  while (elapsed < limit && m_pending_inputs.empty() && has_live_inputs()) {
    const u64 remaining = limit - elapsed;
    const int ms = remaining >= 100'000'000 ? 100 : static_cast<int>((remaining + 999'999) / 1'000'000);
    pollfd p{0, POLLIN, 0};
    const int r = ::poll(&p, 1, ms);
    elapsed = monotonic_ns() - start;
    if (r > 0) {
      poll_inputs(nullptr, 0);
      break;
    }
    if (r < 0 && errno == EINTR) break;  // Ctrl-C: let the loop see it
  }
  m_last_idle_waited = true;
  return now_virtual + (elapsed < limit ? elapsed : limit);
}

void LiveHostIO::finish(const RunEnd&) {}

}  // namespace reel
