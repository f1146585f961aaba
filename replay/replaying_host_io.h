#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include "replay/journal.h"
#include "replay/live_consoles.h"

// The cursor copies console digest states by value (XXH3_state_t holds no
// owned pointers: its secret is the library's static default).
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

namespace reel {

// Everything a replay's host side moves as the machine runs: where it is in
// the journal, what it has verified, and the running digests of console
// output. A snapshot (replay/snapshot.h) keeps one beside the machine state
// so that a restored replay answers and checks exactly as the original did.
struct ReplayCursor {
  struct ConsoleDigest {
    u64 total = 0;
    XXH3_state_t state;
  };
  size_t next = 0;
  size_t next_async = 0;
  size_t next_input = 0;
  u64 checkpoints = 0;
  u64 digests = 0;
  std::optional<EndRecord> recorded_end;
  std::optional<u64> last_good_checkpoint;
  std::optional<u64> divergence_icount;
  std::vector<ConsoleDigest> consoles;  // by channel
};

// Replay disagreed with the journal: what() is one line naming the
// instruction count, what the journal expected and what the machine did.
class ReplayDivergence : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An input file of the recording is missing or differs: one line naming it.
class InputFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Answers every request from the journal at the instruction count where it
// was recorded. Performs no host I/O except writing console output, so a
// replay shows what the recording showed, and reading input files (their
// hashes checked; embedded contents are used when present).
class ReplayingHostIO : public HostIO {
 public:
  // The journal must outlive this object; journal_name is for messages.
  ReplayingHostIO(const JournalReader& journal, std::string journal_name);
  ~ReplayingHostIO() override;

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

  // Consoles write nowhere (their digests are still checked): for the
  // extra machines a divergence search runs beside the user's replay.
  // Call before the machine opens its consoles.
  void set_silent_consoles(bool silent) { m_silent_consoles = silent; }

  // Snapshot support: the cursor now, and back to one taken from this
  // object earlier (the consoles opened must be the same).
  ReplayCursor cursor() const;
  void restore_cursor(const ReplayCursor& cursor);

  // Keyframes: position this replay at the keyframe event `index` of the
  // journal, in a fresh machine that was built from the journal (its
  // consoles opened) and then loaded with the keyframe's state. The replay
  // then answers from the event after the keyframe. A console's running
  // digest cannot be resumed from the recorded hash, so digests past a
  // keyframe start check the byte counts only; checkpoints and the final
  // state hash still check the whole machine.
  void start_at_keyframe(size_t index);
  std::optional<u64> started_at_keyframe() const { return m_keyframe_icount; }

  u64 events_consumed() const { return m_next; }
  // The instruction count of the last checkpoint that matched (nullopt
  // before the first), and where replay diverged (nullopt until it does):
  // the bounds of a divergence report's interval.
  std::optional<u64> last_good_checkpoint() const { return m_last_good_checkpoint; }
  std::optional<u64> divergence_icount() const { return m_divergence_icount; }
  u64 checkpoints_verified() const { return m_checkpoints; }
  u64 digests_verified() const { return m_digests; }
  // The recorded end, once finish() has checked it (absent for the journal
  // of an interrupted recording that was cut short).
  const std::optional<EndRecord>& recorded_end() const { return m_recorded_end; }

 private:
  const JournalEvent* head() const;
  u64 icount() const;
  const JournalEvent& expect(EventKind kind, const std::string& request);
  [[noreturn]] void diverge(const std::string& what) const;
  HostFile load_input(const std::string& path, u64 size, u64 hash, const std::vector<u8>* embedded);
  void check_digest(const ConsoleDigestRecord& d, const char* where);
  size_t replay_send(SocketId socket, const SocketAddress* to, std::span<const u8> bytes);
  void replay_control(SocketId socket, SocketControlRecord::Op op);

  const JournalReader& m_journal;
  std::string m_name;
  const VirtualClock* m_clock = nullptr;
  std::function<u64()> m_hasher;
  LiveConsoles m_consoles;  // output only: the digests checked are m_console_digests
  std::vector<ReplayCursor::ConsoleDigest> m_console_digests;
  // Console bytes written out so far, by channel: not part of the cursor, so
  // a restore does not show the same output twice.
  std::vector<u64> m_shown;
  size_t m_next = 0;        // next journal event
  size_t m_next_async = 0;  // cache: first event at or after m_next the loop stops for
  size_t m_next_input = 0;  // next entry of the header's input table
  u64 m_checkpoints = 0;
  u64 m_digests = 0;
  std::optional<EndRecord> m_recorded_end;
  bool m_silent_consoles = false;
  std::optional<u64> m_end_time_ns;  // the recorded end's virtual time, once needed
  std::optional<u64> m_last_good_checkpoint;
  std::optional<u64> m_keyframe_icount;
  std::vector<ConsoleDigestRecord> m_digest_base;  // by channel, when started at a keyframe
  mutable std::optional<u64> m_divergence_icount;  // set by diverge(), which throws
};

}  // namespace reel
