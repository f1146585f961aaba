// reel diff A.reel B.reel: where two recordings of the same configuration
// part ways. The journals alone give the first checkpoint whose hash
// differs (by bisection over the checkpoint lists) and the first events that
// differ; replaying both side by side then gives the first instruction
// whose effect differs and the fields that differ by path.
//
//   reel diff [--json] [--checkpoints-only] [--no-keyframes] A.reel B.reel
//
// The replay starts at each journal's last keyframe at or before the last
// equal checkpoint (a recording writes one every 2^28 instructions), so
// locating a late difference in an hour-long trace re-runs one interval,
// not the hour. --no-keyframes replays from the start (for comparison).
//
// Exit status: 0 no difference, 1 they differ, 2 bad input (including two
// journals of different configurations, whose difference is printed).

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "core/exit_status.h"
#include "harness/disassembler.h"
#include "harness/divergence.h"
#include "harness/session.h"
#include "harness/verbs.h"
#include "replay/journal.h"

namespace reel {

namespace {

struct Checkpoint {
  u64 icount = 0;
  u64 hash = 0;
  bool operator==(const Checkpoint&) const = default;
};

std::vector<Checkpoint> checkpoints_of(const JournalReader& j) {
  std::vector<Checkpoint> out;
  out.reserve(j.count(EventKind::checkpoint));
  for (const JournalEvent& e : j.events()) {
    if (e.kind == EventKind::checkpoint) out.push_back({e.icount, decode_checkpoint(e, j.name())});
  }
  return out;
}

// The first index at which the lists differ, by bisection: once two runs
// differ they stay different, so "equal up to i" is monotone. Equal lists
// of different lengths differ at the shorter one's end; nullopt: no
// difference.
std::optional<size_t> first_differing_checkpoint(const std::vector<Checkpoint>& a,
                                                 const std::vector<Checkpoint>& b, u64& probes) {
  const size_t n = std::min(a.size(), b.size());
  size_t lo = 0, hi = n;  // [0, lo) equal; the first difference is in [lo, hi]
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    ++probes;
    if (a[mid] == b[mid]) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < n) return lo;
  if (a.size() != b.size()) return n;
  return std::nullopt;
}

std::string join_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

std::string hex64(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

std::vector<std::string> configuration_differences(const JournalHeader& a, const JournalHeader& b) {
  std::vector<std::string> d;
  if (a.argv != b.argv) d.push_back("options: '" + join_argv(a.argv) + "' vs '" + join_argv(b.argv) + "'");
  if (a.seed != b.seed) d.push_back("seed: " + hex64(a.seed) + " vs " + hex64(b.seed));
  if (a.checkpoint_interval != b.checkpoint_interval) {
    d.push_back("checkpoint interval: " + std::to_string(a.checkpoint_interval) + " vs " +
                std::to_string(b.checkpoint_interval));
  }
  if (a.poll_interval != b.poll_interval) {
    d.push_back("poll interval: " + std::to_string(a.poll_interval) + " vs " +
                std::to_string(b.poll_interval));
  }
  const size_t n = std::max(a.inputs.size(), b.inputs.size());
  for (size_t i = 0; i < n; ++i) {
    const InputFile* x = i < a.inputs.size() ? &a.inputs[i] : nullptr;
    const InputFile* y = i < b.inputs.size() ? &b.inputs[i] : nullptr;
    auto text = [](const InputFile* f) {
      return f ? f->path + " (" + std::to_string(f->size) + " bytes, xxh3 " + hex64(f->hash) + ")"
               : std::string("none");
    };
    if (!x || !y || x->path != y->path || x->size != y->size || x->hash != y->hash)
      d.push_back("input file " + std::to_string(i) + ": " + text(x) + " vs " + text(y));
  }
  return d;
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o + "\"";
}

std::string json_changes(const std::vector<FieldChange>& changes) {
  std::string s = "[";
  for (size_t i = 0; i < changes.size(); ++i) {
    const FieldChange& c = changes[i];
    s += (i ? ", " : "") + std::string("{\"path\": ") + json_string(c.path) + ", \"a\": " + json_string(c.a) +
         ", \"b\": " + json_string(c.b) + "}";
  }
  return s + "]";
}

struct Usage {
  bool json = false;
  bool checkpoints_only = false;
  bool no_keyframes = false;
  std::string a, b;
};

}  // namespace

int verb_diff(const std::vector<std::string>& args) {
  Usage u;
  for (const auto& arg : args) {
    if (arg == "--json" || arg == "-json") {
      u.json = true;
    } else if (arg == "--checkpoints-only" || arg == "-checkpoints-only") {
      u.checkpoints_only = true;
    } else if (arg == "--no-keyframes" || arg == "-no-keyframes") {
      u.no_keyframes = true;
    } else if (arg == "--help" || arg == "-h") {
      std::puts(
          "usage: reel diff [--json] [--checkpoints-only] [--no-keyframes] A.reel B.reel\n"
          "  Compares two journals of the same configuration: the first checkpoint whose state hash\n"
          "  differs (bisection), the first journal events that differ and, by replaying both side by\n"
          "  side, the first instruction whose effect differs with the registers, device and netstack\n"
          "  fields (by path) and RAM bytes that differ. --checkpoints-only skips the replay.\n"
          "  The replays start at each journal's last keyframe before the difference;\n"
          "  --no-keyframes replays from the start.\n"
          "  Exit status: 0 no difference, 1 different, 2 bad input or different configurations.");
      return kExitOk;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "reel: diff: unknown option '%s'\n", arg.c_str());
      return kExitBadInput;
    } else if (u.a.empty()) {
      u.a = arg;
    } else if (u.b.empty()) {
      u.b = arg;
    } else {
      std::fprintf(stderr, "reel: diff: two journals at a time ('%s' is extra)\n", arg.c_str());
      return kExitBadInput;
    }
  }
  if (u.b.empty()) {
    std::fputs("reel: diff: which journals? usage: reel diff [--json] A.reel B.reel\n", stderr);
    return kExitBadInput;
  }

  return run_reporting_errors([&]() -> int {
    const auto t0 = std::chrono::steady_clock::now();
    JournalReader::Options options;
    options.allow_truncated = true;  // an interrupted recording is still worth comparing
    const JournalReader ja = JournalReader::open(u.a, options);
    const JournalReader jb = JournalReader::open(u.b, options);

    const std::vector<std::string> config = configuration_differences(ja.header(), jb.header());
    if (!config.empty()) {
      if (u.json) {
        std::string s = "{\"equal\": false, \"configuration_differences\": [";
        for (size_t i = 0; i < config.size(); ++i) s += (i ? ", " : "") + json_string(config[i]);
        std::printf("%s]}\n", s.c_str());
      }
      std::fprintf(stderr, "reel: diff: %s and %s have different configurations:\n", u.a.c_str(),
                   u.b.c_str());
      for (const auto& line : config) std::fprintf(stderr, "reel:   %s\n", line.c_str());
      return kExitBadInput;
    }

    // The journals alone.
    const std::vector<Checkpoint> ca = checkpoints_of(ja);
    const std::vector<Checkpoint> cb = checkpoints_of(jb);
    u64 probes = 0;
    const std::optional<size_t> k = first_differing_checkpoint(ca, cb, probes);
    // Two recordings of one deterministic scenario still read different
    // wall clocks: a host answer that differs counts only when it reaches
    // the machine, which the checkpoints and later events then show.
    std::optional<size_t> first_event;
    std::optional<size_t> first_answer;
    const size_t ne = std::min(ja.size(), jb.size());
    for (size_t i = 0; i < ne && !first_event; ++i) {
      const JournalEvent& x = ja.events()[i];
      const JournalEvent& y = jb.events()[i];
      if (x.kind != y.kind || x.icount != y.icount) {
        first_event = i;
      } else if (x.payload != y.payload) {
        if (x.kind == EventKind::host_time || x.kind == EventKind::idle_advance) {
          if (!first_answer) first_answer = i;
        } else {
          first_event = i;
        }
      }
    }
    if (!first_event && ja.size() != jb.size()) first_event = ne;
    const double journal_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    auto event_text = [](const JournalReader& j, size_t i) {
      return i < j.size() ? describe_event(j.events()[i]) : std::string("(the journal ends)");
    };
    if (!k && !first_event) {
      if (u.json) {
        std::string s = "{\"equal\": true, \"checkpoints\": " + std::to_string(ca.size()) +
                        ", \"events\": " + std::to_string(ja.size());
        if (first_answer) {
          s += ", \"first_differing_host_answer\": {\"index\": " + std::to_string(*first_answer) +
               ", \"a\": " + json_string(event_text(ja, *first_answer)) +
               ", \"b\": " + json_string(event_text(jb, *first_answer)) + "}";
        }
        std::printf("%s, \"journal_seconds\": %.6f}\n", s.c_str(), journal_seconds);
      } else {
        std::printf("no difference: %zu events and %zu checkpoints agree\n", ja.size(), ca.size());
        if (first_answer) {
          std::printf(
              "(the host answered differently without effect on the machine, first at event #%zu:\n  A: %s\n"
              "  B: %s)\n",
              *first_answer, event_text(ja, *first_answer).c_str(), event_text(jb, *first_answer).c_str());
        }
      }
      return kExitOk;
    }

    // Where to look in the replay: from the last equal checkpoint to the
    // first differing one (or the first differing event).
    u64 lo = 0;
    u64 hi = 0;
    if (k && *k > 0) lo = ca[*k - 1].icount;
    if (k) {
      const u64 ia = *k < ca.size() ? ca[*k].icount : kNever;
      const u64 ib = *k < cb.size() ? cb[*k].icount : kNever;
      hi = std::min(ia, ib);
    }
    if (first_event) {
      const u64 ei = std::min(*first_event < ja.size() ? ja.events()[*first_event].icount : kNever,
                              *first_event < jb.size() ? jb.events()[*first_event].icount : kNever);
      if (hi == 0 || hi == kNever || (ei != kNever && ei > hi)) {
        if (ei != kNever) hi = std::max(hi == kNever ? 0 : hi, ei);
      }
    }
    if (hi == kNever) hi = 0;
    if (first_event) {
      // The journals agree on every event before the first differing one,
      // so both machines passed the checkpoints among them in the same
      // state: the last of them bounds the search from below too (the
      // checkpoint lists alone may not differ, e.g. for an input that
      // differs after the last checkpoint).
      for (size_t i = *first_event; i-- > 0;) {
        if (ja.events()[i].kind == EventKind::checkpoint) {
          lo = std::max(lo, ja.events()[i].icount);
          break;
        }
      }
      if (hi != 0 && lo > hi) lo = hi;
    }

    std::optional<InstructionDifference> where;
    double locate_seconds = 0;
    // Where each replay starts: the checkpoints up to `lo` are equal, so
    // each journal's own keyframe at or before it is a state of that run
    // from which the interval can be re-run.
    std::optional<size_t> kfa, kfb;
    u64 from_a = 0, from_b = 0;
    std::string keyframe_note;
    if (!u.checkpoints_only && !u.no_keyframes) {
      kfa = keyframe_at_or_before(ja, lo);
      kfb = keyframe_at_or_before(jb, lo);
      if (kfa) from_a = ja.events()[*kfa].icount;
      if (kfb) from_b = jb.events()[*kfb].icount;
      if (!kfa || !kfb) {
        const bool none_a = !kfa, none_b = !kfb;
        keyframe_note = std::string(none_a && none_b ? "neither journal has"
                                    : none_a         ? "A has no"
                                                     : "B has no") +
                        " keyframe at or before icount " + std::to_string(lo) +
                        " (recorded with --keyframe-interval=0, by an older reel, or the difference is early)"
                        ": " +
                        (none_a && none_b ? "both re-run"
                         : none_a         ? "A re-runs"
                                          : "B re-runs") +
                        " from the start";
      }
    }
    if (!u.checkpoints_only) {
      Disassembler disassembler;
      const auto t1 = std::chrono::steady_clock::now();
      ReplayRun run_a(ja, u.a, std::nullopt, {}, kfa);
      ReplayRun run_b(jb, u.b, std::nullopt, {}, kfb);
      where = locate_first_difference(run_a, run_b, lo, hi, disassembler);
      locate_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    }
    // Instructions each replay ran to get to the difference (or to the end).
    const u64 rerun_a = where ? where->differ_icount - std::min(where->differ_icount, from_a) : 0;
    const u64 rerun_b = where ? where->differ_icount - std::min(where->differ_icount, from_b) : 0;

    if (u.json) {
      std::string s = "{\"equal\": false";
      s += ", \"checkpoints\": {\"a\": " + std::to_string(ca.size()) +
           ", \"b\": " + std::to_string(cb.size()) + ", \"probes\": " + std::to_string(probes);
      if (k) {
        s += ", \"first_differing_index\": " + std::to_string(*k);
        s += ", \"last_equal_icount\": " +
             ((*k > 0) ? std::to_string(ca[*k - 1].icount) : std::string("null"));
        if (*k < ca.size())
          s += ", \"a\": {\"icount\": " + std::to_string(ca[*k].icount) +
               ", \"hash\": " + json_string(hex64(ca[*k].hash)) + "}";
        if (*k < cb.size())
          s += ", \"b\": {\"icount\": " + std::to_string(cb[*k].icount) +
               ", \"hash\": " + json_string(hex64(cb[*k].hash)) + "}";
      }
      s += "}";
      if (first_event) {
        s += ", \"first_differing_event\": {\"index\": " + std::to_string(*first_event) +
             ", \"a\": " + json_string(event_text(ja, *first_event)) +
             ", \"b\": " + json_string(event_text(jb, *first_event)) + "}";
      }
      if (first_answer) {
        s += ", \"first_differing_host_answer\": {\"index\": " + std::to_string(*first_answer) +
             ", \"a\": " + json_string(event_text(ja, *first_answer)) +
             ", \"b\": " + json_string(event_text(jb, *first_answer)) + "}";
      }
      if (where) {
        s += ", \"instruction\": {\"equal_icount\": " + std::to_string(where->equal_icount) +
             ", \"differ_icount\": " + std::to_string(where->differ_icount);
        if (where->has_instruction) {
          s += ", \"address\": " + std::to_string(where->address) +
               ", \"disassembly\": " + json_string(where->disassembly);
        }
        s += ", \"registers\": " + json_changes(where->registers) +
             ", \"fields\": " + json_changes(where->fields) + ", \"ram\": " + json_changes(where->ram) +
             ", \"note\": " + json_string(where->note) + "}";
      }
      if (!u.checkpoints_only) {
        s += ", \"rerun\": {\"a_from_icount\": " + std::to_string(from_a) +
             ", \"b_from_icount\": " + std::to_string(from_b) +
             ", \"a_keyframe\": " + (kfa ? "true" : "false") +
             ", \"b_keyframe\": " + (kfb ? "true" : "false") +
             ", \"a_instructions\": " + std::to_string(rerun_a) +
             ", \"b_instructions\": " + std::to_string(rerun_b) +
             ", \"note\": " + json_string(keyframe_note) + "}";
      }
      char timing[128];
      std::snprintf(timing, sizeof timing, ", \"journal_seconds\": %.6f, \"locate_seconds\": %.6f}",
                    journal_seconds, locate_seconds);
      std::printf("%s%s\n", s.c_str(), timing);
      return 1;
    }

    std::printf("%s and %s differ\n", u.a.c_str(), u.b.c_str());
    if (k) {
      std::printf("first differing checkpoint: #%zu", *k);
      if (*k < ca.size())
        std::printf(", A at icount %" PRIu64 " hash %s", ca[*k].icount, hex64(ca[*k].hash).c_str());
      if (*k < cb.size())
        std::printf(", B at icount %" PRIu64 " hash %s", cb[*k].icount, hex64(cb[*k].hash).c_str());
      if (*k >= ca.size()) std::printf(", A has no more checkpoints");
      if (*k >= cb.size()) std::printf(", B has no more checkpoints");
      std::printf("\n");
      if (*k > 0) {
        std::printf("last equal checkpoint: #%zu at icount %" PRIu64 "\n", *k - 1, ca[*k - 1].icount);
      } else {
        std::printf("no checkpoint is equal\n");
      }
    } else {
      std::printf("every checkpoint is equal (%zu)\n", ca.size());
    }
    if (first_event) {
      std::printf("first differing event: #%zu\n  A: %s\n  B: %s\n", *first_event,
                  event_text(ja, *first_event).c_str(), event_text(jb, *first_event).c_str());
    }
    if (first_answer && (!first_event || *first_answer < *first_event)) {
      std::printf("the host answered differently before that: event #%zu\n  A: %s\n  B: %s\n", *first_answer,
                  event_text(ja, *first_answer).c_str(), event_text(jb, *first_answer).c_str());
    }
    std::printf("journals read and compared in %.1f ms (%" PRIu64
                " bisection probes over %zu + %zu checkpoints)\n",
                journal_seconds * 1000, probes, ca.size(), cb.size());
    if (!u.checkpoints_only) {
      const auto from_text = [](const std::optional<size_t>& k, u64 from) {
        return k ? "keyframe at icount " + std::to_string(from) : std::string("the start");
      };
      std::printf("replayed A from %s, B from %s\n", from_text(kfa, from_a).c_str(),
                  from_text(kfb, from_b).c_str());
      if (!keyframe_note.empty()) std::printf("(%s)\n", keyframe_note.c_str());
    }
    if (where) {
      std::fputs(format_difference(*where, "A", "B", "").c_str(), stdout);
      std::printf("located by replaying both in %.3f s (re-ran %" PRIu64 " + %" PRIu64 " instructions)\n",
                  locate_seconds, rerun_a, rerun_b);
    } else if (!u.checkpoints_only) {
      std::printf("replaying both side by side, their machine states never differ\n");
    }
    return 1;
  });
}

}  // namespace reel
