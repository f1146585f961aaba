// What a halted guest costs the journal while a live input source (a
// terminal, a pipe held open) is attached. An idle that waits on real time
// (-icount sleep=on) is journaled: how long it waited, or when input cut
// it short, is only known then. One that returns its timer deadline at once
// (sleep=off) is not: replay recomputes it, so a mostly halted session
// records no event per halt, and still replays to the same state.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "replay/journal.h"
#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

struct Recorded {
  ProcessResult result;
  std::string journal;
};

// Records the idle guest with stdin a FIFO this process holds open for
// writing (and never writes), so the console stays a live input source for
// the whole run.
Recorded record_with_open_stdin(const std::string& name, const std::string& icount,
                                const std::string& seconds) {
  const std::string fifo = scratch_dir() + "/" + name + ".fifo";
  unlink(fifo.c_str());
  EXPECT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // O_RDWR on a FIFO does not block, and keeps a writer open.
  const int holder = open(fifo.c_str(), O_RDWR);
  EXPECT_GE(holder, 0);
  Recorded r;
  r.journal = scratch_dir() + "/" + name + ".reel";
  const std::string cmd =
      "exec '" + reel_binary() + "' record -o '" + r.journal + "' -kernel '" + guest_path("idle") +
      "' -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 -icount " + icount +
      " -rtc base=2026-11-25T10:00:00 -append 'hz=100 seconds=" + seconds + " report=0' < '" + fifo + "'";
  BackgroundProcess p = spawn_process({"/bin/sh", "-c", cmd});
  r.result = wait_process(p, std::chrono::seconds(60));
  close(holder);
  unlink(fifo.c_str());
  return r;
}

void expect_replay_matches(const Recorded& rec) {
  const ProcessResult rep = run_reel({"replay", rec.journal});
  EXPECT_EQ(rep.status, rec.result.status) << rep.err;
  EXPECT_EQ(rep.out, rec.result.out);
  const std::string hash = summary_field(rec.result.err, "state_hash");
  ASSERT_FALSE(hash.empty()) << rec.result.err;
  EXPECT_EQ(summary_field(rep.err, "state_hash"), hash) << rep.err;
}

TEST(IdleJournal, HaltsThatReturnTheirDeadlineAreNotJournaled) {
  if (access(guest_path("idle").c_str(), R_OK) != 0) GTEST_SKIP() << "guest not built";
  const Recorded rec = record_with_open_stdin("idle-nosleep", "sleep=off", "3");
  ASSERT_EQ(rec.result.status, 1) << rec.result.err;
  EXPECT_NE(rec.result.out.find("idle: 300 ticks = 3 s of uptime"), std::string::npos) << rec.result.out;
  const JournalReader j = JournalReader::open(rec.journal, {});
  EXPECT_EQ(j.count(EventKind::idle_advance), 0u) << "300 halts, each returning its PIT deadline";
  EXPECT_EQ(j.count(EventKind::console_open), 1u);
  expect_replay_matches(rec);
}

TEST(IdleJournal, HaltsPacedByRealTimeAreJournaled) {
  if (access(guest_path("idle").c_str(), R_OK) != 0) GTEST_SKIP() << "guest not built";
  // One virtual second paced against real time: about 100 waits.
  const Recorded rec = record_with_open_stdin("idle-sleep", "sleep=on", "1");
  ASSERT_EQ(rec.result.status, 1) << rec.result.err;
  const JournalReader j = JournalReader::open(rec.journal, {});
  EXPECT_GE(j.count(EventKind::idle_advance), 90u);
  expect_replay_matches(rec);
}

}  // namespace
}  // namespace reel::test
