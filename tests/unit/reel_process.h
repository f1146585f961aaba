#pragma once

// Runs the `reel` binary as a child process for end-to-end tests: feeds
// stdin from a string, captures stdout and stderr, returns the exit status.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace reel::test {

struct ProcessResult {
  int status = -1;  // exit status, or 128+signal
  std::string out;
  std::string err;
};

inline std::string reel_binary() {
  const char* bin = std::getenv("REEL_BIN");
  return bin ? bin : REEL_BINARY_DIR "/reel";
}

inline std::string guest_path(const std::string& name) { return REEL_BINARY_DIR "/guests/" + name + ".elf"; }

// One scratch directory per test process. It is removed when the process
// ends with every test passed, and kept (journals, outputs) for the report
// when one failed or REEL_KEEP_SCRATCH is set.
inline std::string scratch_dir() {
  struct Scratch {
    std::string path;
    Scratch() {
      std::string templ = std::string(REEL_BINARY_DIR) + "/test-scratch-XXXXXX";
      std::vector<char> buf(templ.begin(), templ.end());
      buf.push_back('\0');
      const char* made = mkdtemp(buf.data());
      path = made ? made : "";
    }
    ~Scratch() {
      const auto* unit = ::testing::UnitTest::GetInstance();
      if (!path.empty() && unit && unit->Passed() && !std::getenv("REEL_KEEP_SCRATCH")) {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
      }
    }
  };
  static Scratch dir;
  return dir.path.empty() ? std::string("/tmp") : dir.path;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = {}) {
  static int counter = 0;
  const std::string base = scratch_dir() + "/proc" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  const std::string in_path = base + ".in", out_path = base + ".out", err_path = base + ".err";
  { std::ofstream(in_path, std::ios::binary) << input; }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = 0;
  ProcessResult r;
  if (posix_spawn(&pid, cargv[0], &actions, nullptr, cargv.data(), environ) == 0) {
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  }
  posix_spawn_file_actions_destroy(&actions);
  r.out = read_text(out_path);
  r.err = read_text(err_path);
  return r;
}

// A child started in the background (several that talk to each other, e.g.
// guests on one network); stdout and stderr go to files until it is waited
// for.
struct BackgroundProcess {
  pid_t pid = -1;
  std::string out_path, err_path;
};

inline BackgroundProcess spawn_process(const std::vector<std::string>& argv, const std::string& input = {}) {
  static int counter = 0;
  const std::string base = scratch_dir() + "/bg" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  const std::string in_path = base + ".in";
  { std::ofstream(in_path, std::ios::binary) << input; }
  BackgroundProcess p;
  p.out_path = base + ".out";
  p.err_path = base + ".err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  if (posix_spawn(&p.pid, cargv[0], &actions, nullptr, cargv.data(), environ) != 0) p.pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return p;
}

// What it has written to stdout so far.
inline std::string output_so_far(const BackgroundProcess& p) { return read_text(p.out_path); }

// Waits for it to exit; after `timeout` it is killed (SIGKILL, status 137).
inline ProcessResult wait_process(BackgroundProcess& p, std::chrono::milliseconds timeout) {
  ProcessResult r;
  if (p.pid > 0) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int wstatus = 0;
    pid_t done = 0;
    while ((done = waitpid(p.pid, &wstatus, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
      usleep(20000);
    if (done == 0) {
      kill(p.pid, SIGKILL);
      waitpid(p.pid, &wstatus, 0);
    }
    r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    p.pid = -1;
  }
  r.out = read_text(p.out_path);
  r.err = read_text(p.err_path);
  return r;
}

// Stops it (SIGTERM, then SIGKILL after a second) and reaps it.
inline ProcessResult stop_process(BackgroundProcess& p) {
  if (p.pid > 0) kill(p.pid, SIGTERM);
  return wait_process(p, std::chrono::milliseconds(1000));
}

inline ProcessResult run_reel(std::vector<std::string> args, const std::string& input = {}) {
  args.insert(args.begin(), reel_binary());
  return run_process(args, input);
}

// The value of "key=VALUE" in reel's summary line on stderr, or "".
inline std::string summary_field(const std::string& err, const std::string& key) {
  const std::string needle = " " + key + "=";
  const size_t pos = err.rfind(needle);
  if (pos == std::string::npos) return {};
  const size_t start = pos + needle.size();
  const size_t end = err.find_first_of(" \n", start);
  return err.substr(start, end - start);
}

}  // namespace reel::test
