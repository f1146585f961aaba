// A replay checks itself: a journal whose recorded inputs or checkpoints
// were changed (and re-sealed with valid checksums) replays into a
// divergence report naming the instruction count, exit status 4.

#include <gtest/gtest.h>

#include "replay/journal.h"
#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

std::string record_echo() {
  const std::string journal = scratch_dir() + "/echo-divergence.reel";
  const ProcessResult r = run_reel({"record", "-o", journal, "-checkpoint-interval", "500", "-kernel",
                                    guest_path("echo"), "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"},
                                   "hello\nquit\n");
  EXPECT_EQ(r.status, 1) << r.err;
  return journal;
}

// Rewrites a journal with `edit` applied to each event.
template <class Edit>
std::string rewrite(const std::string& path, const char* name, Edit edit) {
  const JournalReader in = JournalReader::open(path, {});
  const std::string out = scratch_dir() + "/" + name;
  JournalWriter w(out, in.header());
  for (JournalEvent e : in.events()) {
    edit(e);
    w.append(e.kind, e.icount, e.payload);
  }
  w.close();
  return out;
}

TEST(ReplayDivergence, UnchangedJournalReplays) {
  const std::string j = rewrite(record_echo(), "same.reel", [](JournalEvent&) {});
  const ProcessResult r = run_reel({"replay", j});
  EXPECT_EQ(r.status, 1) << r.err;
}

TEST(ReplayDivergence, ChangedInputIsCaught) {
  const std::string j = rewrite(record_echo(), "input.reel", [](JournalEvent& e) {
    if (e.kind == EventKind::console_input && e.payload.size() > 4 && e.payload[4] == 'h') e.payload[4] = 'j';
  });
  const ProcessResult r = run_reel({"replay", j});
  EXPECT_EQ(r.status, 4) << r.err;
  // The first checkpoint after the changed byte reached the UART reports it.
  EXPECT_NE(r.err.find("replay diverged at icount"), std::string::npos) << r.err;
}

TEST(ReplayDivergence, ChangedCheckpointIsCaught) {
  bool changed = false;
  const std::string j = rewrite(record_echo(), "checkpoint.reel", [&](JournalEvent& e) {
    if (e.kind == EventKind::checkpoint && e.icount > 0 && !changed) {
      e.payload[0] ^= 1;
      changed = true;
    }
  });
  ASSERT_TRUE(changed);
  const ProcessResult r = run_reel({"replay", j});
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_NE(r.err.find("machine state hash"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace reel::test
