// `reel diff A B`: two recordings of one deterministic scenario do not
// differ; recordings with different console input are reported at the first
// differing event and instruction; a changed checkpoint is found by
// bisection; different configurations and bad files are bad input.

#include <gtest/gtest.h>

#include "replay/journal.h"
#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

std::string record_echo(const std::string& name, const std::string& input,
                        const std::string& seed = "0x1234") {
  const std::string journal = scratch_dir() + "/" + name;
  const ProcessResult r = run_reel({"record", "-o", journal, "-seed", seed, "-checkpoint-interval", "500",
                                    "-rtc", "base=2020-01-01T00:00:00", "-kernel", guest_path("echo"),
                                    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"},
                                   input);
  EXPECT_EQ(r.status, 1) << r.err;
  return journal;
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

TEST(VerbDiff, TwoRecordingsOfTheSameScenarioDoNotDiffer) {
  const std::string a = record_echo("same-a.reel", "hello\nquit\n");
  const std::string b = record_echo("same-b.reel", "hello\nquit\n");
  const ProcessResult r = run_reel({"diff", a, b});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "no difference")) << r.out;
  const ProcessResult j = run_reel({"diff", "--json", a, b});
  EXPECT_EQ(j.status, 0) << j.err;
  EXPECT_TRUE(has(j.out, "\"equal\": true")) << j.out;
}

TEST(VerbDiff, DifferentInputIsReportedAtTheEventAndField) {
  const std::string a = record_echo("input-a.reel", "hello\nquit\n");
  const std::string b = record_echo("input-b.reel", "hellp\nquit\n");
  const ProcessResult r = run_reel({"diff", a, b});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "first differing checkpoint: #")) << r.out;
  EXPECT_TRUE(has(r.out, "first differing event: #")) << r.out;
  EXPECT_TRUE(has(r.out, "A: console_input at icount 0 (channel 0, 11 bytes)")) << r.out;
  // 'o' (0x6f) against 'p' (0x70), the fifth byte the UART queued.
  EXPECT_TRUE(has(r.out, "field devices.uart.0.host_queue[4]: 0x6f -> 0x70")) << r.out;

  const ProcessResult j = run_reel({"diff", "--json", a, b});
  EXPECT_EQ(j.status, 1) << j.err;
  EXPECT_TRUE(has(j.out, "\"equal\": false")) << j.out;
  EXPECT_TRUE(has(j.out, "{\"path\": \"devices.uart.0.host_queue[4]\", \"a\": \"111\", \"b\": \"112\"}"))
      << j.out;
}

// A copy of `src` whose checkpoint number `index` has its hash changed, as a
// recording by a build that computes another state from there on would.
std::string with_changed_checkpoint(const std::string& src, size_t index, const std::string& name) {
  const JournalReader in = JournalReader::open(src, {});
  const std::string out = scratch_dir() + "/" + name;
  JournalWriter w(out, in.header());
  size_t seen = 0;
  for (JournalEvent e : in.events()) {
    if (e.kind == EventKind::checkpoint && seen++ >= index) e.payload[0] ^= 1;
    w.append(e.kind, e.icount, e.payload);
  }
  w.close();
  return out;
}

TEST(VerbDiff, FirstDifferingCheckpointIsFoundByBisection) {
  const std::string a = record_echo("bisect-a.reel", "hello\nquit\n");
  const JournalReader ja = JournalReader::open(a, {});
  ASSERT_GE(ja.count(EventKind::checkpoint), 12u);
  const std::string b = with_changed_checkpoint(a, 9, "bisect-b.reel");
  const ProcessResult r = run_reel({"diff", "--checkpoints-only", a, b});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "first differing checkpoint: #9")) << r.out;
  EXPECT_TRUE(has(r.out, "last equal checkpoint: #8")) << r.out;
  // log2 of the checkpoint count, not one probe per checkpoint.
  EXPECT_TRUE(has(r.out, "(4 bisection probes") || has(r.out, "(5 bisection probes")) << r.out;

  // Replaying both: B's own replay disagrees with its edited journal at
  // that checkpoint, and no machine state differs before it.
  const ProcessResult full = run_reel({"diff", a, b});
  EXPECT_EQ(full.status, 1) << full.out << full.err;
  EXPECT_TRUE(has(full.out, "diverged from its journal")) << full.out;
}

TEST(VerbDiff, DifferentConfigurationsAreBadInput) {
  const std::string a = record_echo("config-a.reel", "hello\nquit\n", "0x1234");
  const std::string b = record_echo("config-b.reel", "hello\nquit\n", "0x1235");
  const ProcessResult r = run_reel({"diff", a, b});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "different configurations")) << r.err;
  EXPECT_TRUE(has(r.err, "seed: 0x0000000000001234 vs 0x0000000000001235")) << r.err;
}

TEST(VerbDiff, BadFilesAndUsageAreBadInput) {
  const std::string a = record_echo("bad-a.reel", "hello\nquit\n");
  const std::string junk = scratch_dir() + "/junk.reel";
  { std::ofstream(junk) << "not a journal"; }
  const ProcessResult r = run_reel({"diff", a, junk});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(has(r.err, "junk.reel")) << r.err;
  EXPECT_EQ(run_reel({"diff", a}).status, 2);
  EXPECT_EQ(run_reel({"diff", a, a, a}).status, 2);
  EXPECT_EQ(run_reel({"diff", "--frobnicate", a, a}).status, 2);
  EXPECT_EQ(run_reel({"diff", a, scratch_dir() + "/missing.reel"}).status, 2);
}

}  // namespace
}  // namespace reel::test
