#include <cstdio>

#include "core/exit_status.h"
#include "harness/pc_board.h"
#include "harness/session.h"
#include "harness/verbs.h"
#include "replay/journal.h"
#include "replay/replaying_host_io.h"

namespace reel {

int verb_replay(const std::vector<std::string>& args) {
  std::string path;
  JournalReader::Options read_options;
  for (const auto& a : args) {
    if (a == "--allow-truncated" || a == "-allow-truncated") {
      read_options.allow_truncated = true;
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
  return run_reporting_errors(
      [&] {
        const JournalReader journal = JournalReader::open(path, read_options);
        MachineOptions opts = parse_machine_options(journal.header().argv);
        opts.checkpoint_interval = journal.header().checkpoint_interval;
        ReplayingHostIO host(journal, path);
        PcBoard board(opts, host, journal.header().seed);
        const RunEnd end = board.run(install_stop_signals());
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
