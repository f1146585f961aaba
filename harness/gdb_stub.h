#pragma once

// A gdb remote serial protocol server (QEMU's -gdb / -s / -S) for `reel run`
// and `reel replay`. It owns the machine loop while enabled: the machine runs
// through Machine::run_until, pausing on the CPU's debugger stops
// (Cpu::set_breakpoints, Cpu::set_watchpoints, Cpu::request_debug_break).
// Breakpoints never write to guest memory, so a replay under gdb computes
// exactly what the recording did.
//
// In replay the run goes through periodic snapshots (replay/snapshot.h),
// and gdb can go back: reverse-stepi ('bs'), reverse-continue ('bc', back
// to the last breakpoint or watchpoint hit) and `monitor seek` to an earlier
// count; see "reverse execution" in gdb_stub.cc for where each stop leaves
// the machine.
//
// In replay, anything that would change the recorded future (register and
// memory writes, "continue at ADDR") is refused with an error reply and a
// line on stderr saying why, rather than detaching the session from the
// journal: a replay exists to show what happened, and a silently detached
// one would show something else.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/host_io.h"
#include "harness/options.h"

namespace reel {

class PcBoard;
class JournalReader;
class ReplayingHostIO;
class SnapshotStore;

class GdbStub {
 public:
  struct Config {
    GdbOption address;
    bool wait_for_client = false;  // -S: stop before the first instruction
    // Replay: writes are refused, `journal` lists events.
    const JournalReader* journal = nullptr;
    const ReplayingHostIO* replay = nullptr;
    // Replay: the run goes through these periodic snapshots, which makes
    // reverse execution possible (bs, bc, `monitor seek` backwards; only
    // then are ReverseStep+ and ReverseContinue+ advertised). Null: forward
    // only.
    SnapshotStore* snapshots = nullptr;
  };
  // Moves the machine to `icount` for `monitor seek`, replacing the stub's
  // own (forward only without snapshots, both ways with them). Returns an
  // empty string on success or why it cannot.
  using SeekHook = std::function<std::string(u64 icount)>;

  // Opens the listening socket and says where on stderr ("reel: gdb:
  // listening on tcp:127.0.0.1:PORT"). Throws BadInput when it cannot.
  GdbStub(PcBoard& board, Config config);
  ~GdbStub();
  GdbStub(const GdbStub&) = delete;
  GdbStub& operator=(const GdbStub&) = delete;

  u16 port() const;
  void set_seek_hook(SeekHook hook);

  // Runs the machine to its end under the debugger (replaces
  // PcBoard::run); a debugger may attach at any time. Returns when the run
  // has ended and no debugger is attached, or gdb killed the session.
  RunEnd run(const std::atomic<bool>* stop_flag);

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace reel
