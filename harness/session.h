#pragma once

#include <atomic>
#include <functional>
#include <stdexcept>
#include <string>

#include "core/host_io.h"

namespace reel {

// A problem with the user's input found while building or booting the
// machine (missing kernel, not a multiboot image...): one line, exit 2.
class BadInput : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs a verb: returns what `body` returns, or, for the errors any verb can
// meet, prints one line on stderr and returns its exit status (2 for bad
// input of any kind, 4 for a replay divergence); a help request prints on
// stdout and returns 0. `options_origin` prefixes option errors (a replay
// names the journal whose recorded options are bad).
int run_reporting_errors(const std::function<int()>& body, const std::string& options_origin = {});

// Set by SIGINT/SIGTERM; the machine loop polls it at boundaries.
const std::atomic<bool>* install_stop_signals();

// "kind=guest_exit status=1 icount=... time_ns=... state_hash=0x..."
std::string describe_end(const RunEnd& end);
const char* run_end_kind_name(RunEnd::Kind kind);

// Host randomness for a recording's seed (harness may touch the host).
u64 random_seed();

}  // namespace reel
