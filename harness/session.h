#pragma once

#include <atomic>
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

// Set by SIGINT/SIGTERM; the machine loop polls it at boundaries.
const std::atomic<bool>* install_stop_signals();

// "kind=guest_exit status=1 icount=... time_ns=... state_hash=0x..."
std::string describe_end(const RunEnd& end);
const char* run_end_kind_name(RunEnd::Kind kind);

// Host randomness for a recording's seed (harness may touch the host).
u64 random_seed();

}  // namespace reel
