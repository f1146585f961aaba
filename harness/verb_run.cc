#include <cstdio>

#include "core/exit_status.h"
#include "harness/gdb_stub.h"
#include "harness/pc_board.h"
#include "harness/session.h"
#include "harness/verbs.h"
#include "replay/live_host_io.h"

namespace reel {

int verb_run(const std::vector<std::string>& args_in) {
  std::vector<std::string> args;
  bool summary = false;
  for (const auto& a : args_in) {
    if (a == "-summary" || a == "--summary") {
      summary = true;
    } else {
      args.push_back(a);
    }
  }
  return run_reporting_errors([&] {
    const MachineOptions opts = parse_machine_options(args);
    LiveHostIO host(LiveHostIO::Options{.pacing = opts.icount_sleep});
    PcBoard board(opts, host, opts.seed.value_or(0));
    RunEnd end;
    if (opts.gdb) {
      GdbStub stub(board, GdbStub::Config{.address = *opts.gdb, .wait_for_client = opts.wait_for_gdb});
      end = stub.run(install_stop_signals());
    } else {
      end = board.run(install_stop_signals());
    }
    if (summary) std::fprintf(stderr, "reel: end %s\n", describe_end(end).c_str());
    return end.status;
  });
}

}  // namespace reel
