#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>

#include "core/exit_status.h"
#include "core/state_archive.h"
#include "harness/pc_board.h"
#include "harness/session.h"
#include "harness/verbs.h"
#include "replay/journal.h"
#include "replay/recording_host_io.h"

namespace reel {

int verb_record(const std::vector<std::string>& args_in) {
  std::string out_path;
  bool embed = false;
  // Keyframes let a replay (reel diff) start anywhere in a long trace: one
  // every 2^28 instructions is one per ~2-3 s of replay at ~100M instr/s.
  u64 keyframe_interval = u64{1} << 28;
  std::vector<std::string> args;
  for (size_t i = 0; i < args_in.size(); ++i) {
    if (args_in[i] == "--embed" || args_in[i] == "-embed") {
      // A portable trace: the kernel, BIOS and every other file the
      // machine reads go into the journal (compressed), so the replay
      // needs none of them.
      embed = true;
    } else if (args_in[i].starts_with("--keyframe-interval=")) {
      const std::string v = args_in[i].substr(std::strlen("--keyframe-interval="));
      char* end = nullptr;
      errno = 0;
      const unsigned long long n = std::strtoull(v.c_str(), &end, 0);
      if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0) {
        std::fprintf(stderr, "reel: --keyframe-interval: '%s' is not an instruction count (0 disables)\n",
                     v.c_str());
        return kExitBadInput;
      }
      keyframe_interval = n;
    } else if (args_in[i] == "-o" || args_in[i] == "--output") {
      if (i + 1 >= args_in.size()) {
        std::fputs("reel: -o: missing argument (the journal file to write)\n", stderr);
        return kExitBadInput;
      }
      out_path = args_in[++i];
    } else {
      args.push_back(args_in[i]);
    }
  }
  if (out_path.empty()) {
    std::fputs("reel: record: -o FILE is required (the journal to write)\n", stderr);
    return kExitBadInput;
  }
  return run_reporting_errors([&] {
    MachineOptions opts = parse_machine_options(args);
    if (opts.gdb || opts.wait_for_gdb) {
      // A debugger's writes during a recording would change the machine
      // without a journal event, so the recording could not replay. Debug
      // the replay instead: it has the same run, and reverse execution.
      std::fputs(
          "reel: record: -gdb, -s and -S are for 'reel run' and 'reel replay' (debug the replay of a "
          "recording)\n",
          stderr);
      return kExitBadInput;
    }
    const u64 seed = opts.seed.value_or(random_seed());
    JournalHeader header;
    header.argv = args;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd)) header.cwd = cwd;
    header.seed = seed;
    header.checkpoint_interval = opts.checkpoint_interval;
    RecordingHostIO host(out_path, header, RecordingHostIO::Options{.pacing = opts.icount_sleep});
    host.set_embed_files(embed);
    PcBoard board(opts, host, seed);
    // The recorder's writer is only read through writer(); the keyframe
    // hook is the one thing verb_record adds to it.
    const_cast<JournalWriter&>(host.writer()).set_keyframes(keyframe_interval, [&](u64) {
      Machine& m = board.machine();
      // A fresh machine cannot reopen the host sockets a state refers to:
      // no keyframe while any is open (the next interval tries again).
      if (!m.socket_handlers().empty()) return std::vector<u8>();
      std::vector<ConsoleDigestRecord> consoles;
      for (ChannelId id = 0; id < host.console_count(); ++id) {
        const LiveConsoles::Digest d = host.console_digest(id);
        consoles.push_back({id, d.total, d.hash});
      }
      return encode_keyframe(m.state_hash(), consoles, [&](std::ostream& os) {
        BinaryOut ar(os);
        m.save_state(ar, Machine::StateParts::all);
      });
    });
    const RunEnd end = board.run(install_stop_signals());
    std::fprintf(stderr, "reel: recorded %s\nreel: end %s\n", out_path.c_str(), describe_end(end).c_str());
    if (host.writer().failed()) {
      // The run went on, but the journal stops where writing failed (disk
      // full): a recording command that did not record is a failure.
      std::fprintf(stderr, "reel: %s is incomplete: %s\n", out_path.c_str(), host.writer().error().c_str());
      return kExitBadInput;
    }
    return end.status;
  });
}

}  // namespace reel
