#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/types.h"

namespace reel {

class VirtualClock;

// A console channel: a serial port or the monitor. The id is the index of
// the open_console() call, so it is the same in record and replay.
using ChannelId = u32;

struct ConsoleSpec {
  enum class Kind : u8 { none, stdio, file };
  std::string name;  // "serial0", "monitor"
  Kind kind = Kind::none;
  std::string path;          // for Kind::file
  bool wants_input = false;  // stdio: bytes typed on stdin become input
};

struct HostFile {
  bool ok = false;
  std::vector<u8> bytes;
  std::string error;  // one line, when !ok
};

// How a run ended, for the journal's end event and the exit status.
struct RunEnd {
  enum class Kind : u8 { guest_exit, shutdown, stuck, interrupted, journal_end };
  Kind kind = Kind::guest_exit;
  int status = 0;  // process exit status reel will return
  u64 icount = 0;
  u64 time_ns = 0;
  u64 state_hash = 0;
};

// Receives asynchronous host inputs at loop boundaries.
class InputSink {
 public:
  virtual ~InputSink() = default;
  virtual void deliver_input(ChannelId channel, std::span<const u8> bytes) = 0;
};

// The only door to the outside (DESIGN.md, determinism rule 3). Live mode
// performs requests; record mode performs them and journals each result
// stamped with the instruction count; replay performs none and returns the
// journaled result at the same instruction count. Outputs are checked
// against the journal's digests in replay.
//
// The machine loop calls, in this order and identically in every mode:
//   run CPU up to next_stop_icount() -> timers -> boundary()
//   and when halted with nothing pending: idle() -> advance clock -> timers
//   -> boundary().
class HostIO {
 public:
  virtual ~HostIO() = default;

  // Events are stamped with clock->icount(); checkpoints use the hasher.
  virtual void attach(const VirtualClock* clock, std::function<u64()> state_hasher) = 0;

  // -- Synchronous requests, answered at once.
  // Host wall clock, ns since the Unix epoch (UTC).
  virtual i64 host_time_ns() = 0;
  virtual HostFile read_file(const std::string& path) = 0;
  virtual ChannelId open_console(const ConsoleSpec& spec) = 0;
  virtual void console_write(ChannelId channel, std::span<const u8> bytes) = 0;

  // -- Loop integration.
  // The instruction count at which the loop must next stop and call
  // boundary() (a journaled event, a checkpoint, a host poll). kNever if
  // none.
  virtual u64 next_stop_icount() = 0;
  // Delivers inputs due at the current instruction count, writes or checks
  // output digests and checkpoints. Returns false when the run must end
  // here (replay: the recording ended at this instruction count, or the
  // journal of an interrupted recording has no more events).
  virtual bool boundary(InputSink& sink) = 0;
  // The CPU is halted with no interrupt pending. deadline_ns is the next
  // timer deadline. Returns the virtual time to resume at (>= now), or
  // nullopt when nothing can ever wake the guest. Inputs are not delivered
  // here; the boundary() that follows delivers them.
  virtual std::optional<u64> idle(std::optional<u64> deadline_ns) = 0;
  // The run ended. Record writes the end event; replay checks it and may
  // throw ReplayDivergence.
  virtual void finish(const RunEnd& end) = 0;
};

}  // namespace reel
