#include <cstdio>
#include <memory>

#include "core/exit_status.h"
#include "harness/divergence.h"
#include "harness/gdb_stub.h"
#include "harness/pc_board.h"
#include "harness/progress_line.h"
#include "harness/session.h"
#include "harness/verbs.h"
#include "replay/journal.h"
#include "replay/replaying_host_io.h"
#include "replay/snapshot.h"

namespace reel {

namespace {

RunEnd run_replay(PcBoard& board, const std::optional<Perturbation>& perturbation) {
  if (!perturbation) return board.run(install_stop_signals());
  Machine& m = board.machine();
  m.set_stop_flag(install_stop_signals());
  if (const std::optional<RunEnd> end = m.run_until(perturbation->icount)) return *end;
  apply_perturbation(m, *perturbation);
  return m.run();
}

}  // namespace

// Hidden test hook (see harness/divergence.h):
//   --perturb=ICOUNT:ram:ADDR:BIT | ICOUNT:reg:NAME:BIT | ICOUNT:port:PORT:VALUE
// changes one bit of machine state at that instruction count, so tests can
// check that the divergence report names that count and field.
int verb_replay(const std::vector<std::string>& args) {
  std::string path;
  JournalReader::Options read_options;
  std::optional<Perturbation> perturbation;
  std::optional<GdbOption> gdb;
  bool wait_for_gdb = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-gdb" || a == "--gdb") {
      if (i + 1 >= args.size()) {
        std::fputs("reel: replay: -gdb: missing argument\n", stderr);
        return kExitBadInput;
      }
      try {
        gdb = parse_gdb_address(args[++i], "-gdb");
      } catch (const OptionError& e) {
        std::fprintf(stderr, "reel: replay: %s\n", e.what());
        return kExitBadInput;
      }
    } else if (a == "-s") {
      gdb = GdbOption{};
    } else if (a == "-S") {
      wait_for_gdb = true;
    } else if (a == "--allow-truncated" || a == "-allow-truncated") {
      read_options.allow_truncated = true;
    } else if (a.starts_with("--perturb=")) {
      try {
        perturbation = parse_perturbation(a.substr(10));
      } catch (const BadInput& e) {
        std::fprintf(stderr, "reel: replay: %s\n", e.what());
        return kExitBadInput;
      }
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "reel: replay: unknown option '%s' (the journal holds the machine options)\n",
                   a.c_str());
      return kExitBadInput;
    } else if (path.empty()) {
      path = a;
    } else {
      std::fprintf(stderr, "reel: replay: one journal at a time ('%s' is extra)\n", a.c_str());
      return kExitBadInput;
    }
  }
  if (path.empty()) {
    std::fputs("reel: replay: which journal? usage: reel replay FILE\n", stderr);
    return kExitBadInput;
  }
  if (wait_for_gdb && !gdb) {
    std::fputs("reel: replay: -S waits for gdb: add -gdb tcp::PORT or -s\n", stderr);
    return kExitBadInput;
  }
  if (gdb && perturbation) {
    std::fputs("reel: replay: --perturb and -gdb cannot be combined\n", stderr);
    return kExitBadInput;
  }
  return run_reporting_errors(
      [&] {
        const JournalReader journal = JournalReader::open(path, read_options);
        MachineOptions opts = parse_machine_options(journal.header().argv);
        opts.checkpoint_interval = journal.header().checkpoint_interval;
        ReplayingHostIO host(journal, path);
        PcBoard board(opts, host, journal.header().seed);
        // On a terminal, a long replay says how far it is.
        ProgressLine progress("replay");
        // Under gdb the replay keeps periodic snapshots for reverse
        // execution: a reverse step restores the one before and runs at
        // most an interval forward (2^22 instructions: tens of
        // milliseconds); the byte budget thins them on long sessions.
        std::unique_ptr<SnapshotStore> snapshots;
        // Under gdb the stub owns the loop (and the boundary hook).
        std::unique_ptr<GdbStub> stub;
        if (gdb) {
          snapshots = std::make_unique<SnapshotStore>(board.machine(), &host, SnapshotStore::Policy{});
          stub = std::make_unique<GdbStub>(board, GdbStub::Config{.address = *gdb,
                                                                  .wait_for_client = wait_for_gdb,
                                                                  .journal = &journal,
                                                                  .replay = &host,
                                                                  .snapshots = snapshots.get()});
        }
        if (progress.enabled() && !stub) {
          board.machine().set_boundary_hook([&] {
            progress.update(
                ProgressLine::replay_sample(journal, host.events_consumed(), &board.machine().clock()));
          });
        }
        RunEnd end;
        try {
          end = stub ? stub->run(install_stop_signals()) : run_replay(board, perturbation);
          progress.clear();
        } catch (const ReplayDivergence& e) {
          progress.clear();
          // Say where, then find out why: fresh machines re-run the journal.
          std::fprintf(stderr, "reel: %s\n", e.what());
          ReplayDivergenceContext cx;
          cx.journal = &journal;
          cx.name = path;
          cx.message = e.what();
          cx.last_good_checkpoint = host.last_good_checkpoint();
          cx.divergence_icount = host.divergence_icount().value_or(board.machine().clock().icount());
          cx.perturbation = perturbation;
          cx.diverged_machine = &board.machine();
          try {
            std::fputs(explain_replay_divergence(cx).c_str(), stderr);
          } catch (const std::exception& search_error) {
            std::fprintf(stderr, "reel: the divergence search failed: %s\n", search_error.what());
          }
          return kExitDivergence;
        }
        std::fprintf(stderr, "reel: replay verified %llu events and %llu checkpoints\nreel: end %s\n",
                     static_cast<unsigned long long>(host.events_consumed()),
                     static_cast<unsigned long long>(host.checkpoints_verified()), describe_end(end).c_str());
        if (!journal.has_end()) {
          std::fprintf(stderr,
                       "reel: note: %s has no end record (the recording was cut short); replayed up to its "
                       "last event\n",
                       path.c_str());
        }
        if (host.recorded_end()) return host.recorded_end()->status;
        return end.status;
      },
      path + ": recorded options");
}

}  // namespace reel
