// Every guest under qemu-system-i386, the oracle for their behaviour: the
// serial output has the expected lines (and matches the captured
// tests/guests/expected/<name>.txt byte for byte) and the exit status is
// isa-debug-exit's (0 << 1) | 1. Skipped with a message when QEMU is not on
// PATH.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

struct GuestRun {
  const char* name;
  std::vector<std::string> args;
  std::string input;
  std::vector<std::string> expected_lines;  // in this order, others may sit between
  bool compare_with_capture;                // tests/guests/expected/<name>.txt
};

class GuestUnderQemu : public ::testing::TestWithParam<GuestRun> {};

TEST_P(GuestUnderQemu, PrintsExpectedLinesAndExits) {
  const std::string qemu = find_on_path("qemu-system-i386");
  if (qemu.empty()) GTEST_SKIP() << "qemu-system-i386 is not on PATH; guests not checked under QEMU";
  const std::string timeout = find_on_path("timeout");
  const GuestRun& g = GetParam();
  const std::string elf = guest_path(g.name);
  if (access(elf.c_str(), R_OK) != 0) GTEST_SKIP() << "guest not built: " << elf;

  std::vector<std::string> argv;
  if (!timeout.empty()) argv = {timeout, "120"};
  const std::vector<std::string> common = {
      qemu,      "-display",   "none",    "-serial",
      "stdio",   "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
      "-kernel", elf};
  argv.insert(argv.end(), common.begin(), common.end());
  argv.insert(argv.end(), g.args.begin(), g.args.end());
  const ProcessResult r = run_process(argv, g.input);

  EXPECT_EQ(r.status, 1) << "isa-debug-exit code 0 gives status 1; stderr:\n"
                         << r.err << "\nstdout:\n"
                         << r.out;
  const std::vector<std::string> got = lines_of(r.out);
  size_t at = 0;
  for (const auto& want : g.expected_lines) {
    while (at < got.size() && got[at] != want) ++at;
    EXPECT_LT(at, got.size()) << "missing (or out of order): '" << want << "'\noutput:\n" << r.out;
    if (at == got.size()) break;
    ++at;
  }
  if (g.compare_with_capture) {
    const std::string captured = std::string(REEL_SOURCE_DIR) + "/tests/guests/expected/" + g.name + ".txt";
    EXPECT_EQ(r.out, read_text(captured)) << "QEMU's output no longer matches " << captured
                                          << " (tests/guests/update_expected.sh regenerates it)";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Guests, GuestUnderQemu,
    ::testing::Values(
        GuestRun{"hello",
                 {"-append", "hello-arg=1 two"},
                 "",
                 {"Hello from reel guest", "multiboot magic: 2badb002", "flags: 24f",
                  "mem_lower: 639 KiB, mem_upper: 129920 KiB", "arguments: 'hello-arg=1 two'",
                  "mmap: base 0000000000000000 length 000000000009fc00 type 1",
                  "mmap: base 0000000000100000 length 0000000007ee0000 type 1", "boot loader: qemu", "bye"},
                 true},
        GuestRun{"timer",
                 {},
                 "",
                 {"timer: PIT at 100 Hz", "tick 10", "tick 50", "timer: 50 ticks, tsc delta plausible"},
                 true},
        GuestRun{
            "echo",
            {},
            "hello\nworld\nquit\n",
            {"echo: type lines, 'quit' ends", "echo: hello", "echo: world", "echo: quit", "echo: 3 lines"},
            true},
        GuestRun{"rtc",
                 {"-rtc", "base=2030-06-15T12:00:00,clock=vm", "-icount", "shift=0"},
                 "",
                 {"RTC: 2030-06-15 12:00:00 Saturday", "RTC: weekday register matches the date"},
                 false},
        GuestRun{
            "exceptions",
            {},
            "",
            {"#DE: vector 0 error 0 eip +0", "#UD: vector 6 error 0 eip +0",
             "#GP (selector beyond the GDT): vector 13 error 7f8 eip +0",
             "#GP (far jump to the null selector): vector 13 error 0 eip +0", "#BP: vector 3 error 0 eip +1",
             "#OF: vector 4 error 0 eip +1", "#BR: vector 5 error 0 eip +0", "#NP: vector 11 error 28 eip +0",
             "#SS: vector 12 error 30 eip +0", "exceptions: all 9 handled"},
            true},
        GuestRun{"compute",
                 {"-append", "iterations=2"},
                 "",
                 {"compute: 2 iterations", "compute: 2 iterations, checksum f679da84"},
                 true}),
    [](const ::testing::TestParamInfo<GuestRun>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace reel::test
