#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "core/exit_status.h"
#include "harness/options.h"
#include "harness/verbs.h"

namespace {

void print_usage() {
  std::fputs(
      "usage: reel VERB [options]\n"
      "  reel run    MACHINE-OPTIONS              run a guest live\n"
      "  reel record [--embed] -o FILE MACHINE-OPTIONS\n"
      "                                           run and record a journal (--embed: with\n"
      "                                           every file read, so it replays anywhere)\n"
      "  reel replay FILE                         replay a journal, verifying it\n"
      "  reel replay FILE -gdb tcp::PORT [-S]     ... under gdb (-s: tcp::1234; -S: wait for gdb;\n"
      "                                           register and memory writes are refused)\n"
      "  reel info   FILE                         what a journal holds and needs\n"
      "  reel diff   [--json] A B                 where two runs of one setup part ways\n"
      "  reel check  [--junit FILE] PATH...       replay traces against their manifests\n"
      "  reel MACHINE-OPTIONS                     same as 'reel run' (QEMU habit)\n\n",
      stdout);
  std::fputs(reel::machine_options_help().c_str(), stdout);
}

// Every NAT connection of -net user holds a host socket: the usual soft
// limit of 1024 descriptors would refuse connections long before the
// stack's own limit (4096), so take what the hard limit allows.
void raise_descriptor_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  const rlim_t wanted = std::min<rlim_t>(r.rlim_max, 8192);
  if (r.rlim_cur >= wanted) return;
  r.rlim_cur = wanted;
  setrlimit(RLIMIT_NOFILE, &r);
}

}  // namespace

int main(int argc, char** argv) {
  raise_descriptor_limit();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
    print_usage();
    return args.empty() ? reel::kExitBadInput : reel::kExitOk;
  }
  if (args[0] == "--version" || args[0] == "-version" || args[0] == "version") {
    std::puts("reel " REEL_VERSION_STRING);
    return reel::kExitOk;
  }
  try {
    const std::string verb = args[0];
    if (!verb.empty() && verb[0] == '-') return reel::verb_run(args);
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (verb == "run") return reel::verb_run(rest);
    if (verb == "record") return reel::verb_record(rest);
    if (verb == "replay") return reel::verb_replay(rest);
    if (verb == "info") return reel::verb_info(rest);
    if (verb == "diff") return reel::verb_diff(rest);
    if (verb == "check") return reel::verb_check(rest);
    std::fprintf(stderr, "reel: unknown verb '%s' (expected run, record, replay, info, diff or check)\n",
                 verb.c_str());
    return reel::kExitBadInput;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reel: internal error: %s\n", e.what());
    return reel::kExitInternal;
  }
}
