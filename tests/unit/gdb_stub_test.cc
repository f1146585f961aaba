// The gdb stub (harness/gdb_stub.cc) end to end: a real gdb in batch mode
// against `reel replay` of a recorded compute guest and against `reel run
// -S`, plus a raw-socket client for what batch gdb cannot do (Ctrl-C,
// malformed packets). Skipped when gdb is not installed.

#include "harness/gdb_stub.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "core/exit_status.h"
#include "core/machine.h"
#include "harness/gdb_packet.h"
#include "harness/options.h"
#include "harness/pc_board.h"
#include "replay/live_host_io.h"
#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

using namespace std::chrono_literals;

std::string find_gdb() {
  for (const char* p : {"/usr/bin/gdb", "/usr/local/bin/gdb", "/usr/bin/gdb-multiarch"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return {};
}

std::vector<std::string> guest_args(const std::string& iterations) {
  return {"-kernel", guest_path("compute"),
          "-serial", "none",
          "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
          "-append", "iterations=" + iterations};
}

// One recording per test process: compute with one iteration (~6M
// instructions) and the default network (a NIC and a user-mode stack on
// VLAN 0, for `info network`).
const std::string& recorded_journal() {
  static const std::string path = [] {
    const std::string j = scratch_dir() + "/gdb_compute.reel";
    std::vector<std::string> argv = {reel_binary(), "record", "-o", j};
    for (const auto& a : guest_args("1")) argv.push_back(a);
    const ProcessResult r = run_process(argv);
    EXPECT_EQ(r.status, 1) << r.err;  // isa-debug-exit with 0: status 1
    return j;
  }();
  return path;
}

// Starts reel and waits for "listening on tcp:127.0.0.1:PORT" on stderr.
struct StubProcess {
  BackgroundProcess proc;
  int port = 0;
};

StubProcess start_stub(const std::vector<std::string>& argv) {
  StubProcess s;
  s.proc = spawn_process(argv);
  const std::regex re("listening on tcp:127\\.0\\.0\\.1:([0-9]+)");
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    const std::string err = read_text(s.proc.err_path);
    if (std::regex_search(err, m, re)) {
      s.port = std::stoi(m[1]);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  return s;
}

StubProcess start_replay_stub() {
  return start_stub({reel_binary(), "replay", recorded_journal(), "-gdb", "tcp::0", "-S"});
}

// gdb -batch with one -ex per command (an error in one does not stop the
// others); returns stdout and stderr together.
std::string run_gdb(int port, const std::vector<std::string>& commands) {
  std::vector<std::string> argv = {find_gdb(),
                                   "-nx",
                                   "-batch",
                                   "-ex",
                                   "set pagination off",
                                   "-ex",
                                   "target remote 127.0.0.1:" + std::to_string(port)};
  for (const auto& c : commands) {
    argv.push_back("-ex");
    argv.push_back(c);
  }
  argv.push_back(guest_path("compute"));
  BackgroundProcess g = spawn_process(argv);
  const ProcessResult r = wait_process(g, 20s);
  return r.out + r.err;
}

// The value of gdb's "$N = 0x..." line.
std::optional<unsigned long> gdb_value(const std::string& out, int n) {
  std::smatch m;
  const std::regex re("\\$" + std::to_string(n) + " = (0x[0-9a-f]+|[0-9]+)");
  if (!std::regex_search(out, m, re)) return std::nullopt;
  return std::stoul(m[1], nullptr, 0);
}

#define REQUIRE_GDB()                                               \
  do {                                                              \
    if (find_gdb().empty()) GTEST_SKIP() << "gdb is not installed"; \
  } while (0)

TEST(GdbStub, BreakpointOnAGuestFunctionStepiAndRegistersInReplay) {
  REQUIRE_GDB();
  StubProcess s = start_replay_stub();
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  const std::string out =
      run_gdb(s.port, {"info registers", "monitor when", "break *main", "continue", "p/x $eip",
                       "p/x (unsigned)&main", "stepi", "p/x $eip", "info registers", "monitor when", "kill"});
  const ProcessResult r = wait_process(s.proc, 10s);
  // Before the first instruction: the multiboot hand-over registers.
  EXPECT_NE(out.find("eax            0x2badb002"), std::string::npos) << out;
  EXPECT_NE(out.find("eip            0x10000c"), std::string::npos) << out;
  EXPECT_EQ(out.find("rejected target-supplied description"), std::string::npos) << out;
  EXPECT_NE(out.find("icount 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Breakpoint 1, "), std::string::npos) << out;
  const auto hit = gdb_value(out, 1), main_addr = gdb_value(out, 2), stepped = gdb_value(out, 3);
  ASSERT_TRUE(hit && main_addr && stepped) << out;
  EXPECT_EQ(*hit, *main_addr);
  EXPECT_GT(*stepped, *hit);
  EXPECT_LE(*stepped - *hit, 15u);
  char eip_line[64];
  std::snprintf(eip_line, sizeof eip_line, "eip            0x%lx", *stepped);
  EXPECT_NE(out.find(eip_line), std::string::npos) << out;
  // Two `monitor when` answers: 0, then the breakpoint's count plus one.
  std::smatch m;
  const std::regex when("icount ([0-9]+)\nvirtual time");
  std::vector<unsigned long> counts;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), when); it != std::sregex_iterator(); ++it)
    counts.push_back(std::stoul((*it)[1]));
  ASSERT_EQ(counts.size(), 2u) << out;
  EXPECT_EQ(counts[0], 0u);
  EXPECT_GT(counts[1], 1000u);
  EXPECT_NE(r.err.find("gdb: connected"), std::string::npos) << r.err;
}

TEST(GdbStub, WatchpointStopsWhereTheGlobalIsWritten) {
  REQUIRE_GDB();
  StubProcess s = start_replay_stub();
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  const std::string out =
      run_gdb(s.port, {"watch *(unsigned int*)&rng_state", "continue", "p/x *(unsigned int*)&rng_state",
                       "continue", "p/x *(unsigned int*)&rng_state", "kill"});
  wait_process(s.proc, 10s);
  EXPECT_NE(out.find("Hardware watchpoint 1"), std::string::npos) << out;
  // First write: the seed (0 -> v1); second: the first rng() step.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("Old value = 0\nNew value = ([0-9]+)"))) << out;
  const unsigned long seeded = std::stoul(m[1]);
  const auto mem1 = gdb_value(out, 1), mem2 = gdb_value(out, 2);
  ASSERT_TRUE(mem1 && mem2) << out;
  EXPECT_EQ(*mem1, seeded);  // memory holds what the stop reported
  EXPECT_NE(*mem2, *mem1);
  EXPECT_NE(out.find("Old value = " + std::to_string(seeded)), std::string::npos) << out;
}

TEST(GdbStub, HardwareBreakpointReadAndAccessWatchpoints) {
  REQUIRE_GDB();
  StubProcess s = start_replay_stub();
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  const std::string out =
      run_gdb(s.port, {"hbreak *main", "continue", "p/x $eip == (unsigned)&main", "delete",
                       "rwatch *(unsigned int*)&rng_state", "continue", "p/x *(unsigned int*)&rng_state",
                       "delete", "awatch *(unsigned int*)&rng_state", "continue", "kill"});
  wait_process(s.proc, 10s);
  EXPECT_NE(out.find("Hardware assisted breakpoint 1"), std::string::npos) << out;
  EXPECT_EQ(gdb_value(out, 1).value_or(0), 1u) << out;
  // The first read after main starts sees the seeded value...
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("Hardware read watchpoint 2: [^\n]*\n\nValue = ([0-9]+)")))
      << out;
  const unsigned long seen = std::stoul(m[1]);
  EXPECT_NE(seen, 0u);
  EXPECT_EQ(gdb_value(out, 2).value_or(0), seen) << out;
  // ...and the next access is the write of the first rng() result.
  EXPECT_NE(out.find("Old value = " + std::to_string(seen) + "\nNew value = "), std::string::npos) << out;
}

TEST(GdbStub, MonitorCommandsAndRefusedWritesInReplay) {
  REQUIRE_GDB();
  StubProcess s = start_replay_stub();
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  const std::string out =
      run_gdb(s.port, {"monitor info network", "monitor journal", "monitor info devices", "monitor seek 1000",
                       "monitor when", "monitor seek 10", "set $eax = 5", "p/x $eax",
                       "set *(unsigned int*)0x100000 = 7", "p/x *(unsigned int*)0x100000", "continue"});
  const ProcessResult r = wait_process(s.proc, 10s);
  EXPECT_NE(out.find("VLAN 0 devices:"), std::string::npos) << out;
  EXPECT_NE(out.find("ne2k_pci.0"), std::string::npos) << out;
  EXPECT_NE(out.find("next     #"), std::string::npos) << out;
  EXPECT_NE(out.find("pit:\n"), std::string::npos) << out;
  EXPECT_NE(out.find("icount 1000\n"), std::string::npos) << out;
  // Back through the snapshots of reverse execution.
  EXPECT_NE(out.find("now at icount 10\n"), std::string::npos) << out;
  // Writes are refused; the registers and memory keep their values.
  EXPECT_NE(r.err.find("refused to write register eax: this is a replay"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("refused to write guest memory"), std::string::npos) << r.err;
  const auto eax = gdb_value(out, 1), mem = gdb_value(out, 2);
  ASSERT_TRUE(eax && mem) << out;
  EXPECT_NE(*eax, 5u);
  EXPECT_NE(*mem, 7u);
  // Continuing to the end: the replay still verifies, and gdb sees the exit.
  EXPECT_NE(out.find("exited with code 01"), std::string::npos) << out;
  EXPECT_NE(r.err.find("replay verified"), std::string::npos) << r.err;
  EXPECT_EQ(r.status, 1) << r.err;
}

TEST(GdbStub, LiveRunWaitsForGdbAndAcceptsWrites) {
  REQUIRE_GDB();
  std::vector<std::string> argv = {reel_binary(), "run", "-gdb", "tcp::0", "-S"};
  for (const auto& a : guest_args("1")) argv.push_back(a);
  StubProcess s = start_stub(argv);
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  const std::string out = run_gdb(s.port, {"break *main", "continue", "p/x $eip == (unsigned)&main",
                                           "set $ecx = 0x1234", "p/x $ecx", "monitor when", "kill"});
  const ProcessResult r = wait_process(s.proc, 10s);
  EXPECT_NE(out.find("Breakpoint 1, "), std::string::npos) << out;
  EXPECT_EQ(gdb_value(out, 1).value_or(0), 1u) << out;
  EXPECT_EQ(gdb_value(out, 2).value_or(0), 0x1234u) << out;
  EXPECT_EQ(r.err.find("refused"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("killed the session"), std::string::npos) << r.err;
}

// ---- options

MachineOptions parse(std::vector<std::string> extra) {
  std::vector<std::string> args = {"-kernel", "k.elf"};
  args.insert(args.end(), extra.begin(), extra.end());
  return parse_machine_options(args);
}

TEST(GdbOptions, QemuSpellings) {
  EXPECT_FALSE(parse({}).gdb.has_value());
  const MachineOptions s = parse({"-s"});
  ASSERT_TRUE(s.gdb);
  EXPECT_EQ(s.gdb->host, "127.0.0.1");
  EXPECT_EQ(s.gdb->port, 1234);
  EXPECT_FALSE(s.wait_for_gdb);
  const MachineOptions g = parse({"-gdb", "tcp::4321", "-S"});
  EXPECT_EQ(g.gdb->port, 4321);
  EXPECT_TRUE(g.wait_for_gdb);
  const MachineOptions h = parse({"-gdb", "tcp:0.0.0.0:0"});
  EXPECT_EQ(h.gdb->host, "0.0.0.0");
  EXPECT_EQ(h.gdb->port, 0);
  EXPECT_FALSE(parse({"-s", "-gdb", "none"}).gdb.has_value());
  for (const auto& bad : std::vector<std::vector<std::string>>{{"-gdb", "udp::1"},
                                                               {"-gdb", "tcp::65536"},
                                                               {"-gdb", "tcp::"},
                                                               {"-gdb", "tcp:1234"},
                                                               {"-gdb", "tcp::12a"},
                                                               {"-gdb"},
                                                               {"-S"}}) {
    EXPECT_THROW(parse(bad), OptionError) << bad[0] << " " << (bad.size() > 1 ? bad[1] : "");
  }
}

TEST(GdbOptions, PortInUseIsBadInput) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::vector<std::string> argv = {reel_binary(), "run", "-gdb", "tcp::" + std::to_string(ntohs(a.sin_port))};
  for (const auto& x : guest_args("1")) argv.push_back(x);
  const ProcessResult r = run_process(argv);
  close(fd);
  EXPECT_EQ(r.status, kExitBadInput) << r.err;
  EXPECT_NE(r.err.find("cannot listen"), std::string::npos) << r.err;
  const ProcessResult s = run_process({reel_binary(), "replay", recorded_journal(), "-S"});
  EXPECT_EQ(s.status, kExitBadInput) << s.err;
  EXPECT_NE(s.err.find("-S waits for gdb"), std::string::npos) << s.err;
}

// ---- raw protocol

struct RawClient {
  int fd = -1;
  explicit RawClient(int port) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<u16>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      fd = -1;
    }
  }
  ~RawClient() {
    if (fd >= 0) close(fd);
  }
  void send_text(const std::string& s) const { (void)::send(fd, s.data(), s.size(), MSG_NOSIGNAL); }
  // Reads until `want` appears or the time runs out.
  std::string read_until(const std::string& want, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buf.find(want) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char tmp[4096];
      const ssize_t n = recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) break;
      buf.append(tmp, static_cast<size_t>(n));
    }
    return buf;
  }
  std::string buf;
};

TEST(GdbStub, RawPacketsMalformedInputAndCtrlC) {
  std::vector<std::string> argv = {reel_binary(), "run", "-gdb", "tcp::0", "-S"};
  for (const auto& a : guest_args("1000")) argv.push_back(a);  // long enough to interrupt
  StubProcess s = start_stub(argv);
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  RawClient c(s.port);
  ASSERT_GE(c.fd, 0);
  // A bad checksum is answered '-'; an unknown packet gets the empty reply.
  c.send_text("$g#00");
  EXPECT_NE(c.read_until("-", 2s).find('-'), std::string::npos);
  c.buf.clear();
  c.send_text(gdb::frame_packet("qReelNoSuchPacket"));
  EXPECT_NE(c.read_until("$#00", 2s).find("+$#00"), std::string::npos) << c.buf;
  c.buf.clear();
  // Overlong: dropped with '-', and the stub still answers afterwards.
  c.send_text("$" + std::string(gdb::kMaxPacket + 100, 'm') + "#00");
  c.send_text(gdb::frame_packet("qSupported:swbreak+"));
  const std::string sup = c.read_until("hwbreak+", 2s);
  EXPECT_NE(sup.find('-'), std::string::npos) << sup;
  EXPECT_NE(sup.find("PacketSize=4000;qXfer:features:read+;QStartNoAckMode+"), std::string::npos) << sup;
  c.buf.clear();
  // No-ack mode, then the target description and the 'g' layout agree.
  c.send_text(gdb::frame_packet("QStartNoAckMode"));
  EXPECT_NE(c.read_until("$OK#9a", 2s).find("$OK#9a"), std::string::npos);
  c.send_text("+");
  c.buf.clear();
  c.send_text(gdb::frame_packet("qXfer:features:read:target.xml:0,3fff"));
  const std::string xml = c.read_until("</target>", 2s);
  EXPECT_NE(xml.find("org.gnu.gdb.i386.core"), std::string::npos);
  EXPECT_NE(xml.find("<reg name=\"gs\" bitsize=\"32\" type=\"int32\" regnum=\"15\"/>"), std::string::npos)
      << xml;
  c.buf.clear();
  c.send_text(gdb::frame_packet("g"));
  const std::string g = c.read_until("#", 2s);
  // eax = 0x2badb002 first, little-endian; the x87 part is unavailable.
  EXPECT_EQ(g.substr(0, 9), "$02b0ad2b") << g;
  EXPECT_NE(g.find("xxxxxxxxxxxxxxxxxxxx"), std::string::npos) << g;
  c.buf.clear();
  // Run, then Ctrl-C: the stop says SIGINT.
  c.send_text(gdb::frame_packet("vCont;c"));
  std::this_thread::sleep_for(200ms);
  c.send_text("\x03");
  const std::string stop = c.read_until("thread:1;", 5s);
  EXPECT_NE(stop.find("$T02thread:1;"), std::string::npos) << stop;
  c.buf.clear();
  c.send_text(gdb::frame_packet("k"));
  const ProcessResult r = wait_process(s.proc, 10s);
  EXPECT_NE(r.err.find("killed the session"), std::string::npos) << r.err;
}

TEST(GdbStub, AttachingToARunningGuestStopsIt) {
  std::vector<std::string> argv = {reel_binary(), "run", "-gdb", "tcp::0"};  // no -S: it runs at once
  for (const auto& a : guest_args("1000")) argv.push_back(a);
  StubProcess s = start_stub(argv);
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  std::this_thread::sleep_for(100ms);
  RawClient c(s.port);
  ASSERT_GE(c.fd, 0);
  // Nothing arrives unasked; '?' says it stopped as for Ctrl-C.
  EXPECT_EQ(c.read_until("$", 300ms), "");
  c.send_text(gdb::frame_packet("?"));
  EXPECT_NE(c.read_until("thread:1;", 5s).find("+$T02thread:1;"), std::string::npos) << c.buf;
  c.buf.clear();
  c.send_text(gdb::frame_packet("qRcmd," + gdb::to_hex(std::string_view("when"))));
  const std::string when = c.read_until("#", 5s);
  const auto hex = when.substr(when.find('$') + 1, when.find('#') - when.find('$') - 1);
  const auto text = gdb::from_hex(hex);
  ASSERT_TRUE(text) << when;
  const std::string answer(text->begin(), text->end());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(answer, m, std::regex("^icount ([0-9]+)\n"))) << answer;
  EXPECT_GT(std::stoull(m[1]), 0u);
  c.send_text(gdb::frame_packet("k"));
  const ProcessResult r = wait_process(s.proc, 10s);
  EXPECT_NE(r.err.find("killed the session"), std::string::npos) << r.err;
}

// ---- reverse execution (replay: snapshots under the stub)

// Every "icount N" answer of `monitor when`, in order.
std::vector<unsigned long> when_counts(const std::string& out) {
  const std::regex when("icount ([0-9]+)\nvirtual time");
  std::vector<unsigned long> counts;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), when); it != std::sregex_iterator(); ++it)
    counts.push_back(std::stoul((*it)[1]));
  return counts;
}

// The register block of each `info registers` in order.
std::vector<std::string> register_dumps(const std::string& out) {
  std::vector<std::string> dumps;
  for (size_t at = out.find("eax            "); at != std::string::npos;
       at = out.find("eax            ", at + 1)) {
    const size_t stop = out.find("gs             ", at);
    dumps.push_back(out.substr(at, out.find('\n', stop) - at));
  }
  return dumps;
}

TEST(GdbStub, ReverseStepiReturnsToTheSameStateAndStopsAtTheStartOfHistory) {
  REQUIRE_GDB();
  StubProcess s = start_replay_stub();
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  const std::string out =
      run_gdb(s.port, {"reverse-stepi", "monitor when", "break *main", "continue", "info registers",
                       "monitor when", "stepi", "stepi", "monitor when", "reverse-stepi", "reverse-stepi",
                       "info registers", "monitor when", "kill"});
  wait_process(s.proc, 10s);
  // At icount 0 there is nothing before.
  EXPECT_NE(out.find("No more reverse-execution history."), std::string::npos) << out;
  const auto counts = when_counts(out);
  ASSERT_EQ(counts.size(), 4u) << out;
  EXPECT_EQ(counts[0], 0u);
  EXPECT_GT(counts[1], 1000u);
  EXPECT_EQ(counts[2], counts[1] + 2);
  EXPECT_EQ(counts[3], counts[1]);
  // Two steps forward and two back: every register as it was at main.
  const auto dumps = register_dumps(out);
  ASSERT_EQ(dumps.size(), 2u) << out;
  EXPECT_EQ(dumps[0], dumps[1]);
  EXPECT_NE(dumps[1].find("<main>"), std::string::npos) << dumps[1];
}

TEST(GdbStub, ReverseContinueStopsAtTheLastBreakpointHit) {
  REQUIRE_GDB();
  StubProcess s = start_replay_stub();
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  // printf runs once early and several times ~6M instructions later: the
  // way back crosses snapshot intervals.
  const std::string out =
      run_gdb(s.port, {"break printf", "continue", "monitor when", "continue", "monitor when", "continue",
                       "monitor when", "reverse-continue", "monitor when", "reverse-continue", "monitor when",
                       "reverse-continue", "monitor when", "continue", "monitor when", "kill"});
  wait_process(s.proc, 10s);
  const auto c = when_counts(out);
  ASSERT_EQ(c.size(), 7u) << out;
  EXPECT_LT(c[0], c[1]);
  EXPECT_LT(c[1], c[2]);
  EXPECT_GT(c[1] - c[0], 1000000u);
  // Back: the second hit, the first, then the start of history (no hit before it)...
  EXPECT_EQ(c[3], c[1]);
  EXPECT_EQ(c[4], c[0]);
  EXPECT_EQ(c[5], 0u);
  EXPECT_NE(out.find("No more reverse-execution history."), std::string::npos) << out;
  // ...and forward again from there, the first hit as the first time.
  EXPECT_EQ(c[6], c[0]);
  size_t hits = 0;
  for (size_t at = out.find("Breakpoint 1, 0x"); at != std::string::npos;
       at = out.find("Breakpoint 1, 0x", at + 1))
    ++hits;
  EXPECT_EQ(hits, 6u) << out;
}

TEST(GdbStub, ReverseContinueWithAWatchpointStopsWhereTheGlobalWasWritten) {
  REQUIRE_GDB();
  StubProcess s = start_replay_stub();
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  const std::string out = run_gdb(s.port, {"watch *(unsigned int*)&rng_state", "continue", "monitor when",
                                           "continue", "monitor when", "p *(unsigned int*)&rng_state",
                                           "reverse-continue", "monitor when", "p *(unsigned int*)&rng_state",
                                           "stepi", "monitor when", "p *(unsigned int*)&rng_state", "kill"});
  wait_process(s.proc, 10s);
  // Forward: 0 -> v1, then v1 -> v2.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("Old value = 0\nNew value = ([0-9]+)"))) << out;
  const std::string v1 = m[1];
  ASSERT_TRUE(std::regex_search(out, m, std::regex("Old value = " + v1 + "\nNew value = ([0-9]+)"))) << out;
  const std::string v2 = m[1];
  // Back: stopped just before the write of v2, which gdb reports as the
  // change from v2 (after) to v1 (before); memory holds v1 there.
  EXPECT_NE(out.find("Old value = " + v2 + "\nNew value = " + v1), std::string::npos) << out;
  const auto c = when_counts(out);
  ASSERT_EQ(c.size(), 4u) << out;
  EXPECT_EQ(c[2] + 1, c[1]);
  EXPECT_EQ(c[3], c[1]);
  EXPECT_EQ(std::to_string(gdb_value(out, 1).value_or(0)), v2);
  EXPECT_EQ(std::to_string(gdb_value(out, 2).value_or(0)), v1);
  // One instruction on: the write again, the forward stop's count and value.
  EXPECT_EQ(std::to_string(gdb_value(out, 3).value_or(0)), v2);
}

TEST(GdbStub, ReverseExecutionIsNotOfferedLive) {
  REQUIRE_GDB();
  std::vector<std::string> argv = {reel_binary(), "run", "-gdb", "tcp::0", "-S"};
  for (const auto& a : guest_args("1")) argv.push_back(a);
  StubProcess s = start_stub(argv);
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  const std::string out =
      run_gdb(s.port, {"stepi", "stepi", "reverse-stepi", "reverse-continue", "monitor when", "kill"});
  wait_process(s.proc, 10s);
  EXPECT_NE(out.find("does not support this command"), std::string::npos) << out;
  const auto c = when_counts(out);
  ASSERT_EQ(c.size(), 1u) << out;
  EXPECT_EQ(c[0], 2u);
}

TEST(GdbStub, ReverseFeaturesAdvertisedOnlyInReplay) {
  for (const bool replay : {true, false}) {
    std::vector<std::string> argv = {reel_binary()};
    if (replay) {
      argv.insert(argv.end(), {"replay", recorded_journal(), "-gdb", "tcp::0", "-S"});
    } else {
      argv.insert(argv.end(), {"run", "-gdb", "tcp::0", "-S"});
      for (const auto& a : guest_args("1")) argv.push_back(a);
    }
    StubProcess s = start_stub(argv);
    ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
    RawClient c(s.port);
    ASSERT_GE(c.fd, 0);
    c.send_text(gdb::frame_packet("qSupported:swbreak+"));
    const std::string sup = c.read_until("#", 2s);
    EXPECT_EQ(sup.find("ReverseStep+;ReverseContinue+") != std::string::npos, replay) << sup;
    c.buf.clear();
    // At icount 0 a reverse step reports the start of history; live, bs is unknown.
    c.send_text(gdb::frame_packet("bs"));
    const std::string bs = c.read_until("#", 2s);
    if (replay) {
      EXPECT_NE(bs.find("$T05replaylog:begin;thread:1;#"), std::string::npos) << bs;
    } else {
      EXPECT_NE(bs.find("$#00"), std::string::npos) << bs;
    }
    c.buf.clear();
    c.send_text(gdb::frame_packet("k"));
    wait_process(s.proc, 10s);
  }
}

// A monitor command over a raw client: the decoded answer.
std::string raw_monitor(RawClient& c, const std::string& command) {
  c.buf.clear();
  c.send_text(gdb::frame_packet("qRcmd," + gdb::to_hex(std::string_view(command))));
  const std::string r = c.read_until("#", 30s);
  const size_t dollar = r.find('$'), hash = r.find('#', dollar);
  if (dollar == std::string::npos || hash == std::string::npos) return {};
  const auto text = gdb::from_hex(r.substr(dollar + 1, hash - dollar - 1));
  c.buf.clear();
  return text ? std::string(text->begin(), text->end()) : std::string();
}

// One raw packet, its reply payload.
std::string raw_packet(RawClient& c, const std::string& payload, std::chrono::milliseconds timeout = 30s) {
  c.buf.clear();
  c.send_text(gdb::frame_packet(payload));
  const std::string r = c.read_until("#", timeout);
  const size_t dollar = r.find('$'), hash = r.find('#', dollar);
  c.buf.clear();
  if (dollar == std::string::npos || hash == std::string::npos) return "(no reply)";
  return r.substr(dollar + 1, hash - dollar - 1);
}

// ---- paging: gdb's addresses are linear

// A machine in the test process with paging on, its page tables built here
// in guest RAM, under a stub in a thread, talked to with raw packets.
// Linear 0x40000000.. maps elsewhere in physical memory (below); every
// check fails where the stub or the watchpoints take gdb's addresses as
// physical (RAM is 16 MiB, so those addresses would be outside it, or, for
// 0x600000, a RAM byte that is not mapped).
constexpr u32 kPageDir = 0x10000, kPageDir2 = 0x11000, kIdentityTable = 0x12000, kTableA = 0x13000,
              kTableB = 0x14000, kCodePhys = 0x200000;

void put32(Machine& m, u32 physical, u32 value) {
  const u8 b[4] = {static_cast<u8>(value), static_cast<u8>(value >> 8), static_cast<u8>(value >> 16),
                   static_cast<u8>(value >> 24)};
  ASSERT_TRUE(m.memory().write(physical, b));
}

u32 get32(Machine& m, u32 physical) {
  u8 b[4] = {};
  EXPECT_TRUE(m.memory().read(physical, b));
  return b[0] | b[1] << 8 | b[2] << 16 | u32{b[3]} << 24;
}

// Two address spaces (page directories at kPageDir, kPageDir2), both with
// 0-4 MiB identity mapped (the code) and 4-8 MiB (so 0x600000) unmapped.
// Linear pages from 0x40000000:
//   page   first space   second space
//   0      0x300000      0x380000      the watched page
//   1      0x280000      0x280000      not next to page 0's physical page
//   2      -             -             unmapped
//   3      0x300000      0x300000      an alias of page 0 (first space)
//   5      0x200000      0x200000      an alias of the code
void build_paging(Machine& m) {
  constexpr u32 kPw = 3;  // present, writable
  for (u32 i = 0; i < 1024; ++i) put32(m, kIdentityTable + 4 * i, (i << 12) | kPw);
  for (const u32 dir : {kPageDir, kPageDir2}) {
    for (u32 i = 0; i < 1024; ++i) put32(m, dir + 4 * i, 0);
    put32(m, dir, kIdentityTable | kPw);
    put32(m, dir + 4 * (0x40000000u >> 22), (dir == kPageDir ? kTableA : kTableB) | kPw);
  }
  for (const u32 table : {kTableA, kTableB}) {
    for (u32 i = 0; i < 1024; ++i) put32(m, table + 4 * i, 0);
    put32(m, table + 0, (table == kTableA ? 0x300000u : 0x380000u) | kPw);
    put32(m, table + 4, 0x280000u | kPw);
    put32(m, table + 12, 0x300000u | kPw);
    put32(m, table + 20, kCodePhys | kPw);
  }
  // Assembled by hand (`as --32` spelling) at 0x200000:
  const std::vector<u8> code = {
      0xc7, 0x05, 0x10, 0x30, 0x00,
      0x40, 0x11, 0x11, 0x11, 0x11,  // 0x200000: mov DWORD PTR ds:0x40003010,0x11111111
      0xc7, 0x05, 0x10, 0x00, 0x00,
      0x40, 0x22, 0x22, 0x22, 0x22,  // 0x20000a: mov DWORD PTR ds:0x40000010,0x22222222
      0xb8, 0x00, 0x10, 0x01, 0x00,  // 0x200014: mov eax,0x11000
      0x0f, 0x22, 0xd8,              // 0x200019: mov cr3,eax
      0xc7, 0x05, 0x10, 0x00, 0x00,
      0x40, 0x33, 0x33, 0x33, 0x33,  // 0x20001c: mov DWORD PTR ds:0x40000010,0x33333333
      0xeb, 0xf4,                    // 0x200026: jmp 0x20001c
  };
  ASSERT_TRUE(m.memory().write(kCodePhys, code));
  // What gdb reads: page 0 from 0x300000, page 1 from 0x280000; the bytes
  // right after page 0 physically, and the unmapped 0x600000, differ.
  const std::vector<std::pair<u32, u32>> words = {{0x300010, 0xddccbbaa}, {0x300ffc, 0x04030201},
                                                  {0x301000, 0xeeeeeeee}, {0x280000, 0x08070605},
                                                  {0x280ffc, 0x88770000}, {0x600000, 0x5a5a5a5a}};
  for (const auto& [physical, value] : words) put32(m, physical, value);
  Cpu& cpu = m.cpu();
  cpu.enter_flat_protected_mode(kCodePhys);
  CpuRegisters r = cpu.registers();
  r.cr3 = kPageDir;
  r.cr0 |= 0x80000001u;
  cpu.set_registers(r);
}

TEST(GdbStub, MemoryAndWatchpointsUseLinearAddressesUnderPaging) {
  LiveHostIO host(LiveHostIO::Options{.pacing = false});
  const MachineOptions opts = parse_machine_options(
      {"-kernel", guest_path("compute"), "-m", "16", "-serial", "none", "-net", "none"});
  PcBoard board(opts, host, 0);
  Machine& m = board.machine();
  build_paging(m);
  GdbStub stub(board, GdbStub::Config{.address = GdbOption{"127.0.0.1", 0}, .wait_for_client = true});
  RawClient c(stub.port());
  ASSERT_GE(c.fd, 0);
  std::thread runner([&] { stub.run(nullptr); });

  // Reads: the mapped physical bytes; across into a page mapped elsewhere;
  // an unmapped page is an error, and a read running into one is cut short.
  EXPECT_EQ(raw_packet(c, "m40000010,4"), "aabbccdd");
  EXPECT_EQ(raw_packet(c, "m40000ffc,8"), "0102030405060708");
  EXPECT_EQ(raw_packet(c, "m600000,4"), "E14");
  EXPECT_EQ(raw_packet(c, "m40002000,4"), "E14");
  EXPECT_EQ(raw_packet(c, "m40001ffe,4"), "7788");
  // Writes: split the same way; one reaching an unmapped page writes nothing.
  EXPECT_EQ(raw_packet(c, "M40000ffe,4:deadbeef"), "OK");
  EXPECT_EQ(raw_packet(c, "m40000ffe,4"), "deadbeef");
  EXPECT_EQ(raw_packet(c, "M40001ffe,4:01020304"), "E14");
  EXPECT_EQ(raw_packet(c, "m40001ffe,2"), "7788");

  // A write watchpoint on a linear address: the write through the alias
  // (same physical page, other linear page) does not stop; the one through
  // the watched address does, just after it (EIP 0x200014).
  EXPECT_EQ(raw_packet(c, "Z2,40000010,4"), "OK");
  EXPECT_EQ(raw_packet(c, "c", 10s), "T05watch:40000010;thread:1;");
  EXPECT_EQ(raw_packet(c, "p8"), "14002000");
  EXPECT_EQ(raw_packet(c, "m40000010,4"), "22222222");
  // After the CR3 load the watch follows the linear address to its new
  // physical page (0x380000).
  EXPECT_EQ(raw_packet(c, "c", 10s), "T05watch:40000010;thread:1;");
  EXPECT_EQ(raw_packet(c, "p8"), "26002000");
  EXPECT_EQ(raw_packet(c, "m40000010,4"), "33333333");
  // Patching the loop's store through a linear alias of the code: the
  // decoded block already holding it must not run again.
  EXPECT_EQ(raw_packet(c, "M40005022,4:44444444"), "OK");
  EXPECT_EQ(raw_packet(c, "c", 10s), "T05watch:40000010;thread:1;");
  EXPECT_EQ(raw_packet(c, "m40000010,4"), "44444444");

  c.send_text("\x03");  // in case a continue above never stopped
  c.send_text(gdb::frame_packet("k"));
  runner.join();
  EXPECT_EQ(get32(m, 0x300010), 0x22222222u);
  EXPECT_EQ(get32(m, 0x380010), 0x44444444u);
  EXPECT_EQ(get32(m, 0x300ffc), 0xadde0201u);  // de ad at 0x300ffe..
  EXPECT_EQ(get32(m, 0x280000), 0x0807efbeu);  // ..be ef at 0x280000
  EXPECT_EQ(get32(m, 0x280ffc), 0x88770000u);  // the refused write left it
  EXPECT_EQ(get32(m, 0x301000), 0xeeeeeeeeu);
}

// -d in_asm logs a block at its linear address with the bytes found
// through the page tables: run from 0x40005000, an alias of the code at
// physical 0x200000, the first block's bytes are the code's.
TEST(CpuDebug, BlockLogReadsCodeThroughThePageTables) {
  LiveHostIO host(LiveHostIO::Options{.pacing = false});
  const MachineOptions opts = parse_machine_options(
      {"-kernel", guest_path("compute"), "-m", "16", "-serial", "none", "-net", "none"});
  PcBoard board(opts, host, 0);
  Machine& m = board.machine();
  build_paging(m);
  CpuRegisters r = m.cpu().registers();
  r.eip = 0x40005000u;
  m.cpu().set_registers(r);
  std::vector<std::pair<u32, std::vector<u8>>> blocks;
  m.cpu().set_block_hook([&](u32 linear, std::span<const u8> bytes, bool) {
    blocks.emplace_back(linear, std::vector<u8>(bytes.begin(), bytes.end()));
  });
  m.cpu().run(10);  // a block is logged when it ends (the jmp at +0x26)
  ASSERT_FALSE(blocks.empty());
  EXPECT_EQ(blocks[0].first, 0x40005000u);
  std::vector<u8> code(blocks[0].second.size());
  ASSERT_TRUE(m.memory().read(kCodePhys, code));
  EXPECT_EQ(blocks[0].second, code);
  EXPECT_GE(code.size(), 10u);  // at least the first mov
}

// After the end, going back brings the replay to life: it runs to the same
// end again, still checked against the journal.
void back_from_the_end_and_forward_again(const std::string& journal, ProcessResult& result) {
  StubProcess s = start_stub({reel_binary(), "replay", journal, "-gdb", "tcp::0", "-S"});
  ASSERT_GT(s.port, 0) << read_text(s.proc.err_path);
  RawClient c(s.port);
  ASSERT_GE(c.fd, 0);
  EXPECT_EQ(raw_packet(c, "c"), "W01");
  EXPECT_EQ(raw_monitor(c, "seek 6000000"), "now at icount 6000000\n");
  EXPECT_EQ(raw_packet(c, "bs"), "T05thread:1;");
  EXPECT_EQ(raw_monitor(c, "when").substr(0, 15), "icount 5999999\n");
  EXPECT_NE(raw_monitor(c, "snapshots").find(" snapshots, one every 4194304 instructions, "),
            std::string::npos);
  EXPECT_EQ(raw_packet(c, "c"), "W01");
  c.send_text(gdb::frame_packet("k"));
  result = wait_process(s.proc, 10s);
}

TEST(GdbStub, BackFromTheEndOfAReplayAndForwardAgain) {
  ProcessResult r;
  back_from_the_end_and_forward_again(recorded_journal(), r);
  EXPECT_NE(r.err.find("replay verified"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("end kind=guest_exit status=1"), std::string::npos) << r.err;
  EXPECT_EQ(r.status, 1) << r.err;
}

// Needs ReplayingHostIO to write only console bytes past those already
// shown (a restore re-runs output): enable it with that change.
TEST(GdbStub, ConsoleOutputIsShownOnceAcrossReverseMoves) {
  const std::string j = scratch_dir() + "/gdb_compute_stdio.reel";
  std::vector<std::string> argv = {reel_binary(), "record", "-o", j};
  for (auto a : guest_args("1")) argv.push_back(a == "none" ? "stdio" : a);
  ASSERT_EQ(run_process(argv).status, 1);
  ProcessResult r;
  back_from_the_end_and_forward_again(j, r);
  EXPECT_EQ(r.status, 1) << r.err;
  size_t shown = 0;
  for (size_t at = r.out.find("checksum"); at != std::string::npos; at = r.out.find("checksum", at + 1))
    ++shown;
  EXPECT_EQ(shown, 1u) << r.out;
  EXPECT_EQ(r.out.find("compute: 1 iterations\r\n"), 0u) << r.out;
}

}  // namespace
}  // namespace reel::test
