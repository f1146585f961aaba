// Resetting the PC the ways an OS does (tests/guests/reboot.c): the 8042's
// reset pulse (0xFE on port 0x64) and its output port (0xD1), the PIIX3
// reset control register at 0xCF9, the fast reset of port 0x92, and a
// triple fault. Without -no-reboot reel boots the kernel again (the guest
// counts boots in CMOS NVRAM, which a reset keeps); with it, the first reset
// ends reel with status 0, as QEMU does. Each run is recorded, replayed and
// compared; where qemu-system-i386 is installed it must print the same.

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/unit/net_test_support.h"
#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

struct ResetRun {
  const char* method;
  bool no_reboot;
};

std::vector<std::string> machine_args(const ResetRun& r) {
  std::vector<std::string> args = {"-kernel", guest_path("reboot"),
                                   "-serial", "stdio",
                                   "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                                   "-append", std::string("method=") + r.method + " boots=3"};
  if (r.no_reboot) args.push_back("-no-reboot");
  return args;
}

std::string expected_output(const ResetRun& r) {
  // The guest kit ends lines with CR LF, as a serial console wants.
  return r.no_reboot ? "boot 0\r\n" : "boot 0\r\nboot 1\r\nboot 2\r\n";
}
// isa-debug-exit code 0 is status 1; a -no-reboot reset ends with 0.
int expected_status(const ResetRun& r) { return r.no_reboot ? 0 : 1; }

class Reset : public ::testing::TestWithParam<ResetRun> {};

TEST_P(Reset, RebootsOrExitsAndReplays) {
  const ResetRun& r = GetParam();
  if (access(guest_path("reboot").c_str(), R_OK) != 0) GTEST_SKIP() << "guest not built";
  const std::string journal =
      scratch_dir() + "/reset_" + r.method + (r.no_reboot ? "_noreboot" : "") + ".reel";
  std::vector<std::string> record = {"record", "-o", journal};
  for (const auto& a : machine_args(r)) record.push_back(a);
  const ProcessResult rec = run_reel(record);
  EXPECT_EQ(rec.status, expected_status(r)) << rec.err;
  EXPECT_EQ(rec.out, expected_output(r));

  const ProcessResult rep = run_reel({"replay", journal});
  EXPECT_EQ(rep.status, expected_status(r)) << rep.err;
  EXPECT_EQ(rep.out, rec.out);
  const std::string hash = summary_field(rec.err, "state_hash");
  ASSERT_FALSE(hash.empty()) << rec.err;
  EXPECT_EQ(summary_field(rep.err, "state_hash"), hash);
}

TEST_P(Reset, QemuPrintsTheSame) {
  const ResetRun& r = GetParam();
  const std::string qemu = find_on_path("qemu-system-i386");
  if (qemu.empty()) GTEST_SKIP() << "qemu-system-i386 is not on PATH";
  if (access(guest_path("reboot").c_str(), R_OK) != 0) GTEST_SKIP() << "guest not built";
  std::vector<std::string> argv = {find_on_path("timeout"), "60", qemu, "-display", "none"};
  for (const auto& a : machine_args(r)) argv.push_back(a);
  const ProcessResult q = run_process(argv, "");
  EXPECT_EQ(q.out, expected_output(r)) << q.err;
  EXPECT_EQ(q.status, expected_status(r));
}

INSTANTIATE_TEST_SUITE_P(Methods, Reset,
                         ::testing::Values(ResetRun{"kbd", false}, ResetRun{"kbd", true},
                                           ResetRun{"kbdport", false}, ResetRun{"kbdport", true},
                                           ResetRun{"cf9", false}, ResetRun{"cf9", true},
                                           ResetRun{"port92", false}, ResetRun{"port92", true},
                                           ResetRun{"triple", false}, ResetRun{"triple", true}),
                         [](const ::testing::TestParamInfo<ResetRun>& info) {
                           return std::string(info.param.method) + (info.param.no_reboot ? "_no_reboot" : "");
                         });

}  // namespace
}  // namespace reel::test
