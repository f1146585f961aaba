// The reel command line beyond the scenarios: QEMU habits, -d in_asm,
// reel info, and a recording stopped with Ctrl-C that still replays.

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "replay/journal.h"
#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

const std::vector<std::string> kDebugExit = {"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"};

TEST(Cli, NoVerbMeansRunLikeQemu) {
  const ProcessResult r =
      run_reel({"-kernel", guest_path("hello"), "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.out.find("Hello from reel guest"), std::string::npos);
}

TEST(Cli, LogInAsmDisassemblesEachBlockOnce) {
  const std::string log = scratch_dir() + "/in_asm.log";
  const ProcessResult r = run_reel({"run", "-kernel", guest_path("hello"), "-serial", "none", "-device",
                                    "isa-debug-exit,iobase=0xf4,iosize=0x04", "-d", "in_asm", "-D", log});
  EXPECT_EQ(r.status, 1) << r.err;
  const std::string text = read_text(log);
  // The multiboot entry: _start begins with cli; mov esp, ...
  EXPECT_NE(text.find("IN: \n0x00100"), std::string::npos) << text.substr(0, 400);
  EXPECT_NE(text.find(":  cli\n"), std::string::npos) << text.substr(0, 400);
  EXPECT_NE(text.find("out dx, al"), std::string::npos);
  // Each block start is logged once even though loops run it many times.
  size_t blocks = 0;
  for (size_t at = text.find("IN: "); at != std::string::npos; at = text.find("IN: ", at + 1)) ++blocks;
  EXPECT_GT(blocks, 10u);
  EXPECT_LT(blocks, 2000u);
}

TEST(Cli, InfoDescribesAJournal) {
  const std::string journal = scratch_dir() + "/info.reel";
  std::vector<std::string> args = {"record", "-o", journal, "-kernel", guest_path("timer")};
  args.insert(args.end(), kDebugExit.begin(), kDebugExit.end());
  ASSERT_EQ(run_reel(args).status, 1);
  const ProcessResult info = run_reel({"info", journal});
  EXPECT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find("format version " + std::to_string(kJournalFormatVersion)), std::string::npos)
      << info.out;
  EXPECT_NE(info.out.find("timer.elf"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("(needed at replay)"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("host_time"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("end:            kind=guest_exit status=1"), std::string::npos) << info.out;
}

// record --embed makes a portable trace: the kernel goes into the journal
// (compressed), info says nothing is needed, and the replay works after
// the kernel is gone. Without --embed the same replay names the file.
TEST(Cli, EmbeddedTraceReplaysWithoutItsKernel) {
  const std::string dir = scratch_dir() + "/embed";
  ASSERT_EQ(system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str()), 0);
  const std::string kernel = dir + "/timer.elf";
  ASSERT_EQ(system(("cp '" + guest_path("timer") + "' '" + kernel + "'").c_str()), 0);
  const std::string portable = dir + "/portable.reel", plain = dir + "/plain.reel";
  for (const auto& [journal, embed] : {std::pair{portable, true}, std::pair{plain, false}}) {
    std::vector<std::string> args = {"record", "-o", journal, "-kernel", kernel};
    if (embed) args.insert(args.begin() + 1, "--embed");
    args.insert(args.end(), kDebugExit.begin(), kDebugExit.end());
    ASSERT_EQ(run_reel(args).status, 1);
  }
  const ProcessResult info = run_reel({"info", portable});
  EXPECT_NE(info.out.find("(embedded, "), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("portable:       yes"), std::string::npos) << info.out;
  EXPECT_NE(run_reel({"info", plain}).out.find("portable:       no"), std::string::npos);
  ASSERT_EQ(unlink(kernel.c_str()), 0);
  const ProcessResult replay = run_reel({"replay", portable});
  EXPECT_EQ(replay.status, 1) << replay.err;
  EXPECT_NE(replay.out.find("timer: 50 ticks"), std::string::npos) << replay.out;
  const ProcessResult missing = run_reel({"replay", plain});
  EXPECT_EQ(missing.status, 2) << missing.err;
  EXPECT_NE(missing.err.find("timer.elf"), std::string::npos) << missing.err;
}

TEST(Cli, RecordRefusesTheGdbStub) {
  for (const std::vector<std::string>& debug :
       {std::vector<std::string>{"-s"}, {"-gdb", "tcp::0"}, {"-s", "-S"}}) {
    std::vector<std::string> args = {"record", "-o", scratch_dir() + "/gdb.reel", "-kernel",
                                     guest_path("hello")};
    args.insert(args.end(), debug.begin(), debug.end());
    const ProcessResult r = run_reel(args);
    EXPECT_EQ(r.status, 2) << debug[0];
    EXPECT_NE(r.err.find("reel replay"), std::string::npos) << r.err;
  }
}

// Starts reel with a pipe as stdin that stays open, so the echo guest
// waits for input; then Ctrl-C stops the recording.
TEST(Cli, InterruptedRecordingStillReplays) {
  const std::string journal = scratch_dir() + "/interrupted.reel";
  const std::string out_path = scratch_dir() + "/interrupted.out",
                    err_path = scratch_dir() + "/interrupted.err";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> args = {reel_binary(), "record", "-o", journal, "-kernel", guest_path("echo")};
  args.insert(args.end(), kDebugExit.begin(), kDebugExit.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[0]);
  const char line[] = "first line\n";
  ASSERT_EQ(write(fds[1], line, sizeof line - 1), static_cast<ssize_t>(sizeof line - 1));
  usleep(400 * 1000);
  kill(pid, SIGINT);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  close(fds[1]);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 130);
  const std::string rec_err = read_text(err_path);
  const std::string rec_out = read_text(out_path);
  EXPECT_NE(rec_out.find("echo: first line"), std::string::npos) << rec_out;
  EXPECT_NE(rec_err.find("kind=interrupted"), std::string::npos) << rec_err;

  const ProcessResult rep = run_reel({"replay", journal});
  EXPECT_EQ(rep.status, 130) << rep.err;
  EXPECT_EQ(rep.out, rec_out);
  EXPECT_EQ(summary_field(rep.err, "icount"), summary_field(rec_err, "icount")) << rep.err;
  EXPECT_EQ(summary_field(rep.err, "state_hash"), summary_field(rec_err, "state_hash")) << rep.err;
}

}  // namespace
}  // namespace reel::test
