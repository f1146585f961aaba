#include "harness/session.h"

#include <signal.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>

#include "core/exit_status.h"
#include "harness/options.h"
#include "replay/journal.h"
#include "replay/live_consoles.h"
#include "replay/replaying_host_io.h"

namespace reel {

namespace {
std::atomic<bool> g_stop{false};
void on_stop_signal(int) { g_stop.store(true); }
}  // namespace

const std::atomic<bool>* install_stop_signals() {
  struct sigaction sa = {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A closed stdout pipe must not kill a recording half-way.
  signal(SIGPIPE, SIG_IGN);
  return &g_stop;
}

int run_reporting_errors(const std::function<int()>& body, const std::string& options_origin) {
  const auto report = [](const std::string& line) { std::fprintf(stderr, "reel: %s\n", line.c_str()); };
  try {
    return body();
  } catch (const HelpRequested& e) {
    std::printf("%s\n", e.what());
    return 0;
  } catch (const ReplayDivergence& e) {
    report(e.what());
    return kExitDivergence;
  } catch (const OptionError& e) {
    report(options_origin.empty() ? std::string(e.what()) : options_origin + ": " + e.what());
  } catch (const BadInput& e) {
    report(e.what());
  } catch (const HostError& e) {
    report(e.what());
  } catch (const JournalError& e) {
    report(e.what());
  } catch (const InputFileError& e) {
    report(e.what());
  }
  return kExitBadInput;
}

const char* run_end_kind_name(RunEnd::Kind kind) {
  switch (kind) {
    case RunEnd::Kind::guest_exit:
      return "guest_exit";
    case RunEnd::Kind::shutdown:
      return "shutdown";
    case RunEnd::Kind::stuck:
      return "halted";
    case RunEnd::Kind::interrupted:
      return "interrupted";
    case RunEnd::Kind::journal_end:
      return "journal_end";
  }
  return "unknown";
}

std::string describe_end(const RunEnd& end) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "kind=%s status=%d icount=%" PRIu64 " time_ns=%" PRIu64 " state_hash=0x%016" PRIx64,
                run_end_kind_name(end.kind), end.status, end.icount, end.time_ns, end.state_hash);
  return buf;
}

u64 random_seed() {
  u64 seed = 0;
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  urandom.read(reinterpret_cast<char*>(&seed), sizeof seed);
  return seed;
}

}  // namespace reel
