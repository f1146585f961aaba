#pragma once

#include <xxhash.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "core/host_io.h"

namespace reel {

// A host resource named by the options cannot be used (a -serial file that
// cannot be created): one line, exit status 2.
class HostError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The host side of HostIO: performs every request for real. This is the one
// file below harness/ that reads the host clock and polls host descriptors.
// Recording builds on it through the protected hooks.
class LiveHostIO : public HostIO {
 public:
  struct Options {
    bool pacing = true;                  // -icount sleep=on: idle waits follow real time
    u64 poll_interval = u64{1} << 20;    // instructions between host polls
  };
  explicit LiveHostIO(Options options);
  ~LiveHostIO() override;

  void attach(const VirtualClock* clock, std::function<u64()> state_hasher) override;
  i64 host_time_ns() override;
  HostFile read_file(const std::string& path) override;
  ChannelId open_console(const ConsoleSpec& spec) override;
  void console_write(ChannelId channel, std::span<const u8> bytes) override;
  u64 next_stop_icount() override;
  bool boundary(InputSink& sink) override;
  std::optional<u64> idle(std::optional<u64> deadline_ns) override;
  void finish(const RunEnd& end) override;

  // Console output digest: bytes so far and their running XXH3-64.
  struct Digest {
    u64 total = 0;
    u64 hash = 0;
  };
  Digest console_digest(ChannelId channel) const;
  size_t console_count() const { return m_consoles.size(); }

  // Reads a whole file (no journaling). Shared with replay for input files.
  static HostFile read_host_file(const std::string& path);

 protected:
  // Called for every input chunk read from the host before it is delivered.
  virtual void on_input(ChannelId channel, std::span<const u8> bytes) {}
  // True when idle() waited on real time (so recording must journal it).
  bool last_idle_waited() const { return m_last_idle_waited; }
  const VirtualClock* clock() const { return m_clock; }
  u64 state_hash() const { return m_hasher ? m_hasher() : 0; }
  bool has_live_inputs() const;

 private:
  struct Console;
  void poll_inputs(InputSink* sink, int timeout_ms);

  Options m_options;
  const VirtualClock* m_clock = nullptr;
  std::function<u64()> m_hasher;
  std::vector<std::unique_ptr<Console>> m_consoles;
  bool m_last_idle_waited = false;
  std::vector<std::pair<ChannelId, std::vector<u8>>> m_pending_inputs;
};

}  // namespace reel
