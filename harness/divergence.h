#pragma once

// Divergence reports: where two runs of a journal (or of two journals) part
// ways, to the instruction, with the CPU registers, device and netstack
// fields (by their Cereal paths) and RAM bytes that differ. Used by `reel
// replay` when a replay disagrees with its journal and by `reel diff`.
//
// The search runs two replays side by side, pausing both at the same
// instruction counts (Machine::run_until). Each replay keeps periodic
// snapshots (replay/snapshot.h), so going back to an earlier count restores
// the nearest snapshot and runs forward from there instead of re-running
// the journal from the start.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/host_io.h"
#include "core/machine.h"
#include "harness/options.h"
#include "replay/journal.h"
#include "replay/replaying_host_io.h"
#include "replay/snapshot.h"

namespace reel {

class Disassembler;
class PcBoard;

// A test hook: change one bit of machine state at an exact instruction
// count during replay, so tests can check that a divergence is reported
// there. Text forms (reel replay --perturb=...):
//   ICOUNT:ram:ADDR:BIT     flip bit BIT (0-7) of guest RAM byte ADDR
//   ICOUNT:reg:NAME:BIT     flip bit BIT (0-31) of CPU register NAME (eax..edi, eip, eflags)
//   ICOUNT:port:PORT:VALUE  write byte VALUE to I/O port PORT (a device register)
// Numbers are decimal or 0x-prefixed hex.
struct Perturbation {
  enum class Kind : u8 { ram_bit, register_bit, port_write };
  u64 icount = 0;
  Kind kind = Kind::ram_bit;
  u32 address = 0;  // RAM byte address or I/O port
  u32 bit = 0;      // ram_bit, register_bit
  u32 value = 0;    // port_write
  std::string reg;  // register_bit
};
// Throws BadInput naming the problem.
Perturbation parse_perturbation(const std::string& text);
std::string describe_perturbation(const Perturbation& p);
void apply_perturbation(Machine& machine, const Perturbation& p);

// A machine state dump (Machine::dump_state, Cereal JSON) flattened to
// field path -> scalar value text: "cpu.eax" -> "1",
// "devices.ne2k_pci.0.dp8390.isr" -> "17".
using FlatState = std::map<std::string, std::string>;
// Throws std::runtime_error on text that is not JSON.
FlatState flatten_json(std::string_view json);
FlatState flat_state(Machine& machine);

struct FieldChange {
  std::string path;
  std::string a;  // value in the first run ("absent" when missing)
  std::string b;
};
// Fields whose values differ, in path order.
std::vector<FieldChange> diff_states(const FlatState& a, const FlatState& b);
// RAM bytes that differ ("ram[0x00012345]", hex values), at most `limit`.
std::vector<FieldChange> diff_ram(const GuestMemory& a, const GuestMemory& b, size_t limit);
// "cpu.eax: 0x00000001 -> 0x00000002": values that are integers are shown in hex.
std::string format_change(const FieldChange& c);

// The index of the last keyframe event of `journal` at or before `icount`
// (nullopt: none).
std::optional<size_t> keyframe_at_or_before(const JournalReader& journal, u64 icount);
// Loads the keyframe event `index` of `journal` into `machine` (built from
// the journal's options) and positions `host` after it. Throws JournalError
// naming the journal when the keyframe is corrupted.
void load_keyframe(const JournalReader& journal, size_t index, Machine& machine, ReplayingHostIO& host);

// One replay of one journal on its own machine, with consoles silenced,
// which can pause at any instruction count, later or earlier than where it
// is. A replay divergence (of this run against its own journal) ends the run
// and is kept as `divergence()`; going back before it revives the run.
class ReplayRun {
 public:
  // Throws what building the machine throws (BadInput, InputFileError, ...).
  // Snapshots are taken every policy.interval instructions from icount 0,
  // or, given `keyframe` (the index of a keyframe event of the journal),
  // from that keyframe's count: the machine is built as a replay builds it,
  // then loaded with the keyframe's state, and cannot go back before it.
  // A keyframe that does not inflate, load or match its state hash throws
  // JournalError.
  ReplayRun(const JournalReader& journal, const std::string& name,
            std::optional<Perturbation> perturbation = std::nullopt, SnapshotStore::Policy policy = {},
            std::optional<size_t> keyframe = std::nullopt);
  ~ReplayRun();
  ReplayRun(const ReplayRun&) = delete;
  ReplayRun& operator=(const ReplayRun&) = delete;

  // Runs to `icount` and returns true paused there, or false when the run
  // ended (or diverged) first. An `icount` before the current one restores
  // the nearest snapshot at or before it and runs forward.
  bool run_to(u64 icount);
  SnapshotStore& snapshots() { return *m_snapshots; }
  u64 restores() const { return m_restores; }
  bool finished() const { return m_end.has_value() || m_divergence.has_value(); }
  u64 icount();
  u64 state_hash();
  Machine& machine();
  ReplayingHostIO& host() { return m_host; }
  const JournalReader& journal() const { return m_journal; }
  const std::optional<RunEnd>& end() const { return m_end; }
  const std::optional<std::string>& divergence() const { return m_divergence; }
  // "ended (guest_exit status 1) at icount N" / "diverged at ...", for reports.
  std::string describe_finish();

 private:
  const JournalReader& m_journal;
  ReplayingHostIO m_host;
  std::unique_ptr<PcBoard> m_board;
  std::optional<Perturbation> m_perturbation;
  bool m_perturbed = false;
  std::unique_ptr<SnapshotStore> m_snapshots;
  u64 m_restores = 0;
  std::optional<RunEnd> m_end;
  std::optional<std::string> m_divergence;
};

// Where two runs first differ.
struct InstructionDifference {
  u64 equal_icount = 0;   // both states equal here
  u64 differ_icount = 0;  // and differ here (equal_icount + 1 when both ran on)
  // The instruction that retired between the two (run A's), if one did.
  bool has_instruction = false;
  u32 address = 0;  // linear: CS base + EIP
  std::string disassembly;
  std::vector<FieldChange> registers;  // cpu.*
  std::vector<FieldChange> fields;     // everything else in the dump
  std::vector<FieldChange> ram;
  // Host inputs each journal delivered at the boundary at differ_icount:
  // an input that differs is the usual cause of a difference.
  std::vector<std::string> events_a, events_b;
  std::string note;  // e.g. one run ended first
  double seconds = 0;
  double reach_seconds = 0;  // of which getting both runs to the search's start
};

using RunFactory = std::function<std::unique_ptr<ReplayRun>()>;

// Runs the two factories' machines side by side from `lo` (a point known,
// or hoped, to be equal; 0 is always safe) and finds the first instruction
// count at which their states differ. `hint_hi` (where they are known to
// differ, or 0) sets the step of the coarse scan. nullopt: the runs never
// differ.
std::optional<InstructionDifference> locate_first_difference(const RunFactory& make_a,
                                                             const RunFactory& make_b, u64 lo, u64 hint_hi,
                                                             Disassembler& disassembler);
// The same on two runs at hand, wherever they are (they go back by their
// snapshots): a run that already reached the interval is not run again.
std::optional<InstructionDifference> locate_first_difference(ReplayRun& a, ReplayRun& b, u64 lo, u64 hint_hi,
                                                             Disassembler& disassembler);

// Multi-line text of a located difference, each line prefixed by `indent`.
std::string format_difference(const InstructionDifference& d, const std::string& label_a,
                              const std::string& label_b, const std::string& indent);

// What `reel replay` prints after its replay diverged: the checkpoint
// interval, whether a fresh re-run diverges the same way and, when the
// runs differ, the first differing instruction and fields.
struct ReplayDivergenceContext {
  const JournalReader* journal = nullptr;
  std::string name;
  std::string message;  // the ReplayDivergence's what()
  std::optional<u64> last_good_checkpoint;
  u64 divergence_icount = 0;
  std::optional<Perturbation> perturbation;  // the diverged run had one
  Machine* diverged_machine = nullptr;       // its state where it stopped, if still at hand
};
std::string explain_replay_divergence(const ReplayDivergenceContext& context);

}  // namespace reel
