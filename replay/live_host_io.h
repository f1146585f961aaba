#pragma once

#include <unistd.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/host_io.h"
#include "replay/live_consoles.h"
#include "replay/live_sockets.h"

namespace reel {

// Performs every request for real. With LiveConsoles, the one place below
// harness/ that reads the host clock, polls host descriptors and reads
// host files. RecordingHostIO builds on it: it overrides the requests,
// calls these implementations and journals their results, and sees each
// polled input through on_input().
class LiveHostIO : public HostIO {
 public:
  struct Options {
    bool pacing = true;                // -icount sleep=on: idle waits follow real time
    u64 poll_interval = u64{1} << 20;  // instructions between host polls
    int input_fd = STDIN_FILENO;       // where a stdio console's input comes from
  };
  explicit LiveHostIO(Options options);
  ~LiveHostIO() override;

  void attach(const VirtualClock* clock, std::function<u64()> state_hasher) override;
  i64 host_time_ns() override;
  HostFile read_file(const std::string& path) override;
  HostFile read_file_under(const std::string& root, const std::string& name) override;
  ChannelId open_console(const ConsoleSpec& spec) override;
  void console_write(ChannelId channel, std::span<const u8> bytes) override;
  SocketOpenResult socket_open(const SocketSpec& spec) override;
  size_t socket_send(SocketId socket, std::span<const u8> bytes) override;
  size_t socket_send_to(SocketId socket, const SocketAddress& to, std::span<const u8> bytes) override;
  void socket_pause(SocketId socket, bool paused) override;
  void socket_shutdown(SocketId socket) override;
  void socket_close(SocketId socket) override;
  u64 next_stop_icount() override;
  bool boundary(InputSink& sink) override;
  std::optional<u64> idle(std::optional<u64> deadline_ns) override;
  void finish(const RunEnd& end) override;

  const Options& options() const { return m_options; }
  LiveConsoles::Digest console_digest(ChannelId channel) const { return m_consoles.digest(channel); }
  size_t console_count() const { return m_consoles.size(); }
  // A console still reads host input (stdin not at EOF), or the machine
  // talks to host sockets. Once it has opened one, the outside world stays
  // live even while no socket is open (a backend waiting to reconnect), so
  // idle time keeps following real time.
  bool has_live_inputs() const {
    return m_input_channel.has_value() || !m_unix_inputs.empty() || m_uses_sockets;
  }

  // Reads a whole host file; on failure ok is false and error is one line.
  static HostFile read_host_file(const std::string& path);
  // The path a read_file_under() is journaled as in a file_read event,
  // "name under root": readable in `reel info` and divergence reports
  // (a NUL separator would cut exception messages short), never a path
  // read_file() is given in practice, and exact for the one root a run has.
  static std::string jailed_journal_path(const std::string& root, const std::string& name);

 protected:
  // Each input read from the host, just before it is delivered.
  virtual void on_input(ChannelId channel, std::span<const u8> bytes) {}
  // Each socket event, just before it is delivered.
  virtual void on_socket_event(const SocketEvent& event) {}
  // Whether the last idle() waited on real time rather than returning the
  // deadline at once.
  bool last_idle_waited() const { return m_last_idle_waited; }
  const VirtualClock* clock() const { return m_clock; }
  u64 current_icount() const;
  u64 state_hash() const { return m_hasher ? m_hasher() : 0; }

 private:
  // Reads what the input descriptor has, without blocking, into
  // m_pending_input. Returns false at EOF or error (the source is gone).
  void read_input();
  // Reads what the Unix socket consoles' clients typed (accepting one
  // that is waiting) into m_unix_pending.
  void read_unix_inputs();
  // Waits up to timeout_ns of real time for input; returns the real ns
  // that passed.
  u64 wait_for_input(u64 timeout_ns);

  Options m_options;
  const VirtualClock* m_clock = nullptr;
  std::function<u64()> m_hasher;
  LiveConsoles m_consoles;
  LiveSockets m_sockets;
  bool m_uses_sockets = false;
  std::vector<SocketEvent> m_socket_events;
  std::optional<ChannelId> m_input_channel;
  std::vector<u8> m_pending_input;
  std::vector<ChannelId> m_unix_inputs;  // unix_server consoles that take input
  std::map<ChannelId, std::vector<u8>> m_unix_pending;
  bool m_last_idle_waited = false;
};

}  // namespace reel
