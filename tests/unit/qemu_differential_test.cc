// The same guest ELF under qemu-system-i386 and under reel prints the same
// serial output (skipped with a message where QEMU is not installed).

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

std::string find_qemu() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin"}) {
    const std::string path = std::string(dir) + "/qemu-system-i386";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return {};
}

struct Guest {
  const char* name;
  std::vector<std::string> args;
  std::string input;
};

class QemuDifferential : public ::testing::TestWithParam<Guest> {};

TEST_P(QemuDifferential, SameSerialOutput) {
  const std::string qemu = find_qemu();
  if (qemu.empty()) GTEST_SKIP() << "qemu-system-i386 is not installed; differential test skipped";
  const Guest& g = GetParam();
  std::vector<std::string> common = {"-kernel", guest_path(g.name), "-serial", "stdio", "-device",
                                     "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot"};
  common.insert(common.end(), g.args.begin(), g.args.end());
  std::vector<std::string> q = {"/usr/bin/timeout", "120", qemu, "-display", "none", "-icount", "shift=0"};
  q.insert(q.end(), common.begin(), common.end());
  const ProcessResult qr = run_process(q, g.input);
  std::vector<std::string> r = {"run"};
  r.insert(r.end(), common.begin(), common.end());
  const ProcessResult rr = run_reel(r, g.input);
  EXPECT_EQ(qr.status, 1) << qr.err;
  EXPECT_EQ(rr.status, qr.status) << rr.err;
  EXPECT_EQ(rr.out, qr.out);
}

INSTANTIATE_TEST_SUITE_P(Guests, QemuDifferential,
                         ::testing::Values(Guest{"hello", {"-append", "a=1 b"}, ""}, Guest{"timer", {}, ""},
                                           Guest{"exceptions", {}, ""},
                                           Guest{"rtc", {"-rtc", "base=2030-06-15T12:00:00,clock=vm"}, ""},
                                           Guest{"compute", {"-append", "iterations=1"}, ""}),
                         [](const ::testing::TestParamInfo<Guest>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace reel::test
