// Every guest scenario is record -> replay -> compare: the same console
// output, the same exit status and the same final state hash. Where QEMU's
// output for the guest was captured (tests/guests/expected), reel's output
// must match it too.

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

struct Scenario {
  const char* name;
  std::vector<std::string> extra_args;
  std::string input;
  int expected_status;
  // Its output matches QEMU's (tests/guests/expected/NAME.txt) only when it
  // does not print wall-clock readings.
  bool compare_with_qemu = true;
};

std::vector<std::string> machine_args(const Scenario& s) {
  std::vector<std::string> args = {"-kernel", guest_path(s.name), "-serial",
                                   "stdio",   "-device",          "isa-debug-exit,iobase=0xf4,iosize=0x04"};
  args.insert(args.end(), s.extra_args.begin(), s.extra_args.end());
  return args;
}

class GuestScenario : public ::testing::TestWithParam<Scenario> {};

TEST_P(GuestScenario, RecordReplayCompare) {
  const Scenario& s = GetParam();
  if (access(guest_path(s.name).c_str(), R_OK) != 0)
    GTEST_SKIP() << "guest not built: " << guest_path(s.name);
  const std::string journal = scratch_dir() + "/" + s.name + ".reel";

  std::vector<std::string> record = {"record", "-o", journal};
  for (const auto& a : machine_args(s)) record.push_back(a);
  const ProcessResult rec = run_reel(record, s.input);
  ASSERT_EQ(rec.status, s.expected_status) << "record stderr:\n" << rec.err << "\nstdout:\n" << rec.out;

  // Replay gets no stdin at all: console input must come from the journal.
  const ProcessResult rep = run_reel({"replay", journal});
  EXPECT_EQ(rep.status, s.expected_status) << "replay stderr:\n" << rep.err;
  EXPECT_EQ(rep.out, rec.out) << "console output differs between record and replay";
  const std::string rec_hash = summary_field(rec.err, "state_hash");
  ASSERT_FALSE(rec_hash.empty()) << rec.err;
  EXPECT_EQ(summary_field(rep.err, "state_hash"), rec_hash) << rep.err;
  EXPECT_EQ(summary_field(rep.err, "icount"), summary_field(rec.err, "icount"));

  // A live run of the same guest prints the same thing.
  std::vector<std::string> run = {"run"};
  for (const auto& a : machine_args(s)) run.push_back(a);
  const ProcessResult live = run_reel(run, s.input);
  EXPECT_EQ(live.status, s.expected_status) << live.err;

  const std::string expected_path =
      std::string(REEL_SOURCE_DIR) + "/tests/guests/expected/" + s.name + ".txt";
  if (s.compare_with_qemu && access(expected_path.c_str(), R_OK) == 0) {
    EXPECT_EQ(rec.out, read_text(expected_path))
        << "reel's output differs from QEMU's (" << expected_path << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Guests, GuestScenario,
    ::testing::Values(Scenario{"hello", {"-append", "hello-arg=1 two"}, "", 1}, Scenario{"timer", {}, "", 1},
                      Scenario{"echo", {}, "hello\nworld\nquit\n", 1},
                      Scenario{"rtc", {"-rtc", "base=2026-11-25T04:43:12"}, "", 1, false},
                      Scenario{"exceptions", {}, "", 1},
                      Scenario{"compute", {"-append", "iterations=2"}, "", 1},
                      Scenario{"idle",
                               {"-rtc", "base=2026-11-25T23:59:58", "-append", "hz=250 seconds=4 report=1"},
                               "",
                               1,
                               false}),
    [](const ::testing::TestParamInfo<Scenario>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace reel::test
