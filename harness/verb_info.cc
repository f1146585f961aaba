#include <cinttypes>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/exit_status.h"
#include "core/host_io.h"
#include "harness/session.h"
#include "harness/verbs.h"
#include "replay/journal.h"

namespace reel {

int verb_info(const std::vector<std::string>& args) {
  if (args.size() != 1 || (!args[0].empty() && args[0][0] == '-')) {
    std::fputs("reel: info: usage: reel info FILE\n", stderr);
    return kExitBadInput;
  }
  const std::string& path = args[0];
  return run_reporting_errors([&] {
    JournalReader::Options options;
    options.allow_truncated = true;  // info describes whatever is readable
    const JournalReader j = JournalReader::open(path, options);
    const JournalHeader& h = j.header();
    std::printf("journal:        %s (%" PRIu64 " bytes, format version %u)\n", path.c_str(), j.file_size(),
                j.format_version());
    std::printf("recorded by:    reel %s\n", h.reel_version.c_str());
    std::printf("configuration:");
    for (const auto& a : h.argv) std::printf(" %s", a.c_str());
    std::printf("\nworking dir:    %s\n", h.cwd.c_str());
    std::printf("seed:           0x%016" PRIx64 "\n", h.seed);
    std::printf("checkpoints:    every %" PRIu64 " instructions\n", h.checkpoint_interval);
    // What the trace carries and what a replay still needs: files read
    // while the machine was built (the header's table) and files read while
    // it ran (file_read events, e.g. served by TFTP), each once by path.
    struct FileLine {
      u64 size = 0, hash = 0, stored = 0;
      bool embedded = false, ok = true;
      u64 reads = 0;
    };
    std::map<std::string, FileLine> run_files;
    for (const auto& e : j.events()) {
      if (e.kind != EventKind::file_read) continue;
      const FileReadRecord r = decode_file_read(e, path);
      FileLine& f = run_files[r.path];
      f.size = r.size;
      f.hash = r.hash;
      f.embedded = r.embedded;
      f.stored = r.stored_size;
      f.ok = r.ok;
      ++f.reads;
    }
    const auto print_file = [](const std::string& name, u64 size, u64 hash, bool embedded, u64 stored) {
      std::printf("  %s  %" PRIu64 " bytes  xxh3 %016" PRIx64, name.c_str(), size, hash);
      if (embedded) {
        std::printf("  (embedded, %" PRIu64 " bytes stored)\n", stored);
      } else {
        std::printf("  (needed at replay)\n");
      }
    };
    u64 needed = 0;
    std::printf("input files:    %zu\n", h.inputs.size());
    for (const auto& in : h.inputs) {
      print_file(in.path, in.size, in.hash, in.embedded, in.stored_size);
      if (!in.embedded) ++needed;
    }
    if (!run_files.empty()) {
      std::printf("files read while running: %zu\n", run_files.size());
      for (const auto& [name, f] : run_files) {
        if (!f.ok) {
          std::printf("  %s  (the read failed; nothing needed)\n", name.c_str());
          continue;
        }
        print_file(name, f.size, f.hash, f.embedded, f.stored);
        if (!f.embedded) ++needed;
      }
    }
    if (needed == 0) {
      std::printf("portable:       yes (every file the replay reads is in the journal)\n");
    } else {
      std::printf("portable:       no (%" PRIu64
                  " file(s) must exist with the same contents; record with --embed)\n",
                  needed);
    }
    std::map<std::string, u64> counts;
    u64 input_bytes = 0;
    u64 received_bytes = 0, sent_bytes = 0;
    std::vector<std::string> sockets;
    for (const auto& e : j.events()) {
      ++counts[event_kind_name(e.kind)];
      if (e.kind == EventKind::console_input && e.payload.size() >= 4) input_bytes += e.payload.size() - 4;
      if (e.kind == EventKind::socket_event) received_bytes += decode_socket_event(e, path).bytes.size();
      if (e.kind == EventKind::socket_send) sent_bytes += decode_socket_send(e, path).accepted;
      if (e.kind == EventKind::socket_open) {
        // What the recording talked to: a replay needs none of it.
        static const char* const kKinds[] = {"tcp listen", "tcp connect", "udp", "udp multicast"};
        const SocketOpenRecord o = decode_socket_open(e, path);
        std::string line = std::string(kKinds[static_cast<u8>(o.spec.kind)]) + " " + o.spec.host + ":" +
                           std::to_string(o.spec.port);
        line += o.result.ok ? " (socket " + std::to_string(o.result.id) + ")"
                            : " (failed: " + o.result.error + ")";
        sockets.push_back(line);
      }
    }
    std::printf("events:         %zu\n", j.events().size());
    for (const auto& [kind, n] : counts) std::printf("  %-16s %" PRIu64 "\n", kind.c_str(), n);
    {
      // Where a replay can start besides icount 0 (reel diff uses them).
      u64 keyframe_bytes = 0, first = 0, last = 0;
      for (const auto& e : j.events()) {
        if (e.kind != EventKind::keyframe) continue;
        if (keyframe_bytes == 0) first = e.icount;
        last = e.icount;
        keyframe_bytes += e.payload.size();
      }
      const u64 n = j.count(EventKind::keyframe);
      if (n == 0) {
        std::printf("keyframes:      0\n");
      } else {
        std::printf("keyframes:      %" PRIu64 " (%" PRIu64 " bytes stored, icount %" PRIu64 " to %" PRIu64
                    ")\n",
                    n, keyframe_bytes, first, last);
      }
    }
    if (input_bytes) std::printf("console input:  %" PRIu64 " bytes\n", input_bytes);
    if (!sockets.empty()) {
      std::printf("host sockets:   %zu opened, %" PRIu64 " bytes received, %" PRIu64 " bytes sent\n",
                  sockets.size(), received_bytes, sent_bytes);
      for (const auto& line : sockets) std::printf("  %s\n", line.c_str());
    }
    if (j.has_end()) {
      const EndRecord end = decode_end(j.events().back(), path);
      RunEnd re;
      re.kind = static_cast<RunEnd::Kind>(end.kind);
      re.status = end.status;
      re.icount = end.icount;
      re.time_ns = end.time_ns;
      re.state_hash = end.state_hash;
      std::printf("end:            %s\n", describe_end(re).c_str());
    } else {
      std::printf("end:            none (the recording was cut short%s)\n",
                  j.truncated() ? "; the last chunk is torn" : "");
    }
    return kExitOk;
  });
}

}  // namespace reel
