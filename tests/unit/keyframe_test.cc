// Keyframes: `reel record --keyframe-interval=N` writes the whole machine
// state into the journal every N instructions; a replay started from any of
// them in a fresh machine continues bit-exactly (same checkpoints, same end
// state hash, same console output from there); `reel diff` re-runs only from
// the keyframe before a late difference; a corrupted keyframe is bad input.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/exit_status.h"
#include "harness/divergence.h"
#include "harness/options.h"
#include "harness/pc_board.h"
#include "replay/journal.h"
#include "replay/replaying_host_io.h"
#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

constexpr u64 kKeyframeInterval = 4'000'000;

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The compute guest (about 22M instructions at 4 iterations) with its
// console in a file, so that what a replay shows can be compared.
struct Recorded {
  std::string journal;
  std::string console;  // path of the console file the recording wrote
  std::string output;   // what it wrote
};

Recorded record_compute(const std::string& name, const std::string& keyframes) {
  Recorded r;
  r.journal = scratch_dir() + "/" + name + ".reel";
  r.console = scratch_dir() + "/" + name + ".console";
  const ProcessResult p = run_reel({"record", "-o", r.journal, "--keyframe-interval=" + keyframes, "-seed",
                                    "7", "-checkpoint-interval", "1000000", "-kernel", guest_path("compute"),
                                    "-serial", "file:" + r.console, "-device",
                                    "isa-debug-exit,iobase=0xf4,iosize=0x04", "-append", "iterations=4"});
  EXPECT_EQ(p.status, 1) << p.err;
  r.output = read_text(r.console);
  return r;
}

const Recorded& compute_trace() {
  static const Recorded r = record_compute("kf-compute", std::to_string(kKeyframeInterval));
  return r;
}

std::vector<size_t> keyframes_of(const JournalReader& j) {
  std::vector<size_t> out;
  for (size_t i = 0; i < j.size(); ++i) {
    if (j.events()[i].kind == EventKind::keyframe) out.push_back(i);
  }
  return out;
}

TEST(Keyframes, RecordedEveryIntervalAndCountedByInfo) {
  const Recorded& t = compute_trace();
  const JournalReader j = JournalReader::open(t.journal, {});
  EXPECT_EQ(j.format_version(), kJournalFormatVersion);
  const std::vector<size_t> k = keyframes_of(j);
  const u64 end_icount = j.end_record()->icount;
  // One after the first checkpoint at or past each multiple of the interval.
  EXPECT_EQ(k.size(), end_icount / kKeyframeInterval) << "end icount " << end_icount;
  u64 expect = kKeyframeInterval;
  for (size_t i : k) {
    const JournalEvent& e = j.events()[i];
    EXPECT_GE(e.icount, expect);
    EXPECT_LT(e.icount, expect + 1'000'000);
    // Right after the checkpoint at the same count, which replay checks first.
    ASSERT_GT(i, 0u);
    EXPECT_EQ(j.events()[i - 1].kind, EventKind::checkpoint);
    EXPECT_EQ(j.events()[i - 1].icount, e.icount);
    expect = (e.icount / kKeyframeInterval + 1) * kKeyframeInterval;
  }
  const ProcessResult info = run_reel({"info", t.journal});
  EXPECT_EQ(info.status, 0) << info.err;
  EXPECT_TRUE(has(info.out, "keyframes:      " + std::to_string(k.size()) + " (")) << info.out;

  // A full replay runs through the keyframes.
  const ProcessResult replay = run_reel({"replay", t.journal});
  EXPECT_EQ(replay.status, 1) << replay.err;
}

TEST(Keyframes, DisabledWithIntervalZero) {
  const Recorded r = record_compute("kf-none", "0");
  const JournalReader j = JournalReader::open(r.journal, {});
  EXPECT_EQ(j.count(EventKind::keyframe), 0u);
  EXPECT_EQ(r.output, compute_trace().output);
  const ProcessResult bad = run_reel({"record", "-o", scratch_dir() + "/kf-bad.reel", "--keyframe-interval=x",
                                      "-kernel", guest_path("compute")});
  EXPECT_EQ(bad.status, kExitBadInput);
  EXPECT_TRUE(has(bad.err, "--keyframe-interval")) << bad.err;
}

TEST(Keyframes, EachKeyframeContinuesInAFreshMachineLikeTheFullReplay) {
  const Recorded& t = compute_trace();
  const JournalReader j = JournalReader::open(t.journal, {});
  const EndRecord recorded = *j.end_record();
  const std::vector<size_t> k = keyframes_of(j);
  ASSERT_GE(k.size(), 3u);
  for (size_t index : k) {
    const JournalEvent& e = j.events()[index];
    SCOPED_TRACE("keyframe at icount " + std::to_string(e.icount));
    // The replay writes the console file again, from the keyframe on.
    std::remove(t.console.c_str());
    RunEnd end;
    u64 checkpoints = 0;
    {
      ReplayingHostIO host(j, t.journal);
      MachineOptions opts = parse_machine_options(j.header().argv);
      opts.checkpoint_interval = j.header().checkpoint_interval;
      PcBoard board(opts, host, j.header().seed);
      load_keyframe(j, index, board.machine(), host);
      EXPECT_EQ(board.machine().clock().icount(), e.icount);
      ASSERT_EQ(host.started_at_keyframe(), e.icount);
      const u64 before = host.checkpoints_verified();
      end = board.run(nullptr);  // finish() checks the end against the journal
      checkpoints = host.checkpoints_verified() - before;
      ASSERT_TRUE(host.recorded_end().has_value());
    }
    EXPECT_EQ(end.state_hash, recorded.state_hash);
    EXPECT_EQ(end.icount, recorded.icount);
    EXPECT_EQ(end.time_ns, recorded.time_ns);
    // Every checkpoint after the keyframe was checked.
    u64 after = 0;
    for (size_t i = index + 1; i < j.size(); ++i) after += j.events()[i].kind == EventKind::checkpoint;
    EXPECT_EQ(checkpoints, after);
    ASSERT_EQ(recorded.digests.size(), 1u);
    const u64 shown_before = decode_keyframe(e, t.journal).consoles.at(0).total;
    ASSERT_LE(shown_before, t.output.size());
    EXPECT_EQ(read_text(t.console), t.output.substr(shown_before));
  }
}

TEST(Keyframes, ReplayRunStartsAtAKeyframeAndCannotGoBackBeforeIt) {
  const Recorded& t = compute_trace();
  const JournalReader j = JournalReader::open(t.journal, {});
  const std::vector<size_t> k = keyframes_of(j);
  ASSERT_GE(k.size(), 2u);
  const u64 at = j.events()[k[1]].icount;
  ReplayRun full(j, t.journal);
  ReplayRun from(j, t.journal, std::nullopt, {}, k[1]);
  EXPECT_EQ(from.icount(), at);
  ASSERT_TRUE(full.run_to(at + 12345));
  ASSERT_TRUE(from.run_to(at + 12345));
  EXPECT_EQ(full.state_hash(), from.state_hash());
  EXPECT_FALSE(from.run_to(at - 1));
  EXPECT_EQ(keyframe_at_or_before(j, at), k[1]);
  EXPECT_EQ(keyframe_at_or_before(j, at - 1), k[0]);
  EXPECT_FALSE(keyframe_at_or_before(j, j.events()[k[0]].icount - 1).has_value());
}

// A copy of `src` with console input injected at `icount` (the guest's UART
// receives a byte there): the same run up to that point, another after.
std::string with_late_input(const std::string& src, u64 icount, const std::string& name) {
  const JournalReader in = JournalReader::open(src, {});
  const std::string out = scratch_dir() + "/" + name;
  JournalWriter w(out, in.header());
  bool injected = false;
  for (const JournalEvent& e : in.events()) {
    if (!injected && e.icount > icount) {
      const std::vector<u8> byte = {'x'};
      const std::vector<u8> p = encode_console_input(0, byte);
      w.append(EventKind::console_input, icount, p);
      injected = true;
    }
    w.append(e.kind, e.icount, e.payload);
  }
  w.close();
  return out;
}

TEST(Keyframes, DiffOfALateDifferenceReRunsFromTheKeyframeBeforeIt) {
  const Recorded& t = compute_trace();
  const JournalReader j = JournalReader::open(t.journal, {});
  const std::vector<size_t> k = keyframes_of(j);
  ASSERT_GE(k.size(), 2u);
  const u64 last_keyframe = j.events()[k.back()].icount;
  const u64 at = last_keyframe + 1'500'123;
  ASSERT_LT(at, j.end_record()->icount);
  const std::string b = with_late_input(t.journal, at, "kf-late-b.reel");

  const ProcessResult r = run_reel({"diff", t.journal, b});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  const std::string from = "keyframe at icount " + std::to_string(last_keyframe);
  EXPECT_TRUE(has(r.out, "replayed A from " + from + ", B from " + from)) << r.out;
  EXPECT_TRUE(has(r.out, "differ at icount " + std::to_string(at + 1)) ||
              has(r.out, "icount " + std::to_string(at)))
      << r.out;

  const ProcessResult js = run_reel({"diff", "--json", t.journal, b});
  EXPECT_EQ(js.status, 1) << js.err;
  EXPECT_TRUE(has(js.out, "\"a_from_icount\": " + std::to_string(last_keyframe))) << js.out;
  EXPECT_TRUE(has(js.out, "\"a_keyframe\": true, \"b_keyframe\": true")) << js.out;
  // Less than one keyframe interval re-run, not the whole trace.
  const size_t p = js.out.find("\"a_instructions\": ");
  ASSERT_NE(p, std::string::npos) << js.out;
  const u64 rerun = std::stoull(js.out.substr(p + 18));
  EXPECT_GT(rerun, 0u);
  EXPECT_LT(rerun, kKeyframeInterval);
  EXPECT_TRUE(has(js.out, "\"differ_icount\": " + std::to_string(at))) << js.out;

  // Without keyframes: the same instruction, found by replaying from 0.
  const ProcessResult full = run_reel({"diff", "--json", "--no-keyframes", t.journal, b});
  EXPECT_EQ(full.status, 1) << full.err;
  EXPECT_TRUE(has(full.out, "\"a_from_icount\": 0")) << full.out;
  EXPECT_TRUE(has(full.out, "\"differ_icount\": " + std::to_string(at))) << full.out;
}

TEST(Keyframes, DiffExplainsAJournalWithoutKeyframes) {
  const Recorded none = record_compute("kf-none-a", "0");
  const JournalReader j = JournalReader::open(none.journal, {});
  const u64 at = j.end_record()->icount - 2'000'000;
  const std::string b = with_late_input(none.journal, at, "kf-none-b.reel");
  const ProcessResult r = run_reel({"diff", none.journal, b});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "replayed A from the start, B from the start")) << r.out;
  EXPECT_TRUE(has(r.out, "neither journal has keyframe")) << r.out;
}

// A copy of `src` whose keyframes are changed by `edit` (the chunks are
// rewritten, so their checksums hold: only the keyframe itself is bad).
std::string with_edited_keyframes(const std::string& src, const std::string& name,
                                  const std::function<void(std::vector<u8>&)>& edit) {
  const JournalReader in = JournalReader::open(src, {});
  const std::string out = scratch_dir() + "/" + name;
  JournalWriter w(out, in.header());
  for (JournalEvent e : in.events()) {
    if (e.kind == EventKind::keyframe) edit(e.payload);
    w.append(e.kind, e.icount, e.payload);
  }
  w.close();
  return out;
}

TEST(Keyframes, CorruptedKeyframeIsBadInput) {
  const Recorded& t = compute_trace();
  const JournalReader j = JournalReader::open(t.journal, {});
  const u64 at = j.events()[keyframes_of(j).back()].icount + 1'000'000;
  // The zlib stream's middle: it no longer inflates (or not to its size).
  const std::string a = with_edited_keyframes(t.journal, "kf-corrupt.reel", [](std::vector<u8>& p) {
    for (size_t i = p.size() / 2; i < p.size() / 2 + 64; ++i) p[i] ^= 0x5a;
  });
  const std::string b = with_late_input(a, at, "kf-corrupt-b.reel");
  const ProcessResult r = run_reel({"diff", a, b});
  EXPECT_EQ(r.status, kExitBadInput) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "kf-corrupt.reel: keyframe at icount")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  // The state hash it claims: it inflates and loads, then does not match.
  const std::string h =
      with_edited_keyframes(t.journal, "kf-hash.reel", [](std::vector<u8>& p) { p[0] ^= 1; });
  const std::string hb = with_late_input(h, at, "kf-hash-b.reel");
  const ProcessResult rh = run_reel({"diff", h, hb});
  EXPECT_EQ(rh.status, kExitBadInput) << rh.out << rh.err;
  EXPECT_TRUE(has(rh.err, "loads to state hash")) << rh.err;

  // A state size that lies is refused when the journal is read.
  const std::string s = with_edited_keyframes(t.journal, "kf-size.reel", [](std::vector<u8>& p) {
    // u64 state hash, u32 console count, one console (20 bytes), u64 size.
    p[8 + 4 + 20 + 7] = 0x7f;
  });
  const ProcessResult rs = run_reel({"info", s});
  EXPECT_EQ(rs.status, kExitBadInput) << rs.out << rs.err;
  EXPECT_TRUE(has(rs.err, "impossible state size")) << rs.err;
  // And a truncated payload.
  const std::string c =
      with_edited_keyframes(t.journal, "kf-cut.reel", [](std::vector<u8>& p) { p.resize(30); });
  const ProcessResult rc = run_reel({"info", c});
  EXPECT_EQ(rc.status, kExitBadInput) << rc.out << rc.err;
  EXPECT_TRUE(has(rc.err, "kf-cut.reel")) << rc.err;
}

}  // namespace
}  // namespace reel::test
