// `reel check` end to end, on scratch copies of the timer trace of traces/
// (and on traces recorded here): a passing check, a manifest whose state
// hash is wrong (exit 1, a report beside the trace), missing and malformed
// manifests and a corrupted trace (exit 2, one line naming the file), the
// JUnit report, a trace that replays after its kernel file is gone, and
// the progress line's formatting and terminal rule.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "harness/progress_line.h"
#include "replay/journal.h"
#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

namespace fs = std::filesystem;

const std::string kSourceTrace = std::string(REEL_SOURCE_DIR) + "/traces/timer.reel";

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

size_t line_count(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// The value of `key=` in a manifest, or "".
std::string manifest_value(const std::string& manifest, const std::string& key) {
  std::istringstream in(manifest);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key + "=")) return line.substr(key.size() + 1);
  }
  return {};
}

std::string replace_line(const std::string& manifest, const std::string& key, const std::string& value) {
  std::istringstream in(manifest);
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.starts_with(key + "=")) line = key + "=" + value;
    out += line + "\n";
  }
  return out;
}

class VerbCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kSourceTrace.c_str(), R_OK) != 0) GTEST_SKIP() << "no trace at " << kSourceTrace;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    m_dir = scratch_dir() + "/check_" + info->name();
    fs::remove_all(m_dir);
    fs::create_directories(m_dir);
  }

  // Copies traces/timer.reel and its manifest into the test's directory
  // as NAME.reel / NAME.manifest; returns the trace's path.
  std::string copy_trace(const std::string& name) {
    const std::string trace = m_dir + "/" + name + ".reel";
    fs::copy_file(kSourceTrace, trace, fs::copy_options::overwrite_existing);
    fs::copy_file(std::string(REEL_SOURCE_DIR) + "/traces/timer.manifest", m_dir + "/" + name + ".manifest",
                  fs::copy_options::overwrite_existing);
    return trace;
  }
  std::string manifest_of(const std::string& name) const { return m_dir + "/" + name + ".manifest"; }

  std::string m_dir;
};

TEST_F(VerbCheck, ACopyOfATracePasses) {
  const std::string trace = copy_trace("timer");
  const ProcessResult r = run_reel({"check", m_dir});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(r.out.starts_with("PASS " + trace + " (")) << r.out;
  EXPECT_NE(r.out.find("\n1 passed, 0 failed\n"), std::string::npos) << r.out;
  // Console output is compared, not shown: nothing of the guest's reaches
  // stdout, and nothing at all reaches stderr when stderr is no terminal.
  EXPECT_EQ(r.out.find("timer:"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");
  EXPECT_FALSE(fs::exists(trace + ".failure.txt"));
}

TEST_F(VerbCheck, AWrongStateHashFailsAndKeepsAReport) {
  const std::string trace = copy_trace("timer");
  const std::string manifest = read_text(manifest_of("timer"));
  const std::string real_hash = manifest_value(manifest, "state_hash");
  ASSERT_EQ(real_hash.size(), 18u) << manifest;
  const std::string wrong_hash = "0x0123456789abcdef";
  ASSERT_NE(real_hash, wrong_hash);
  write_text(manifest_of("timer"), replace_line(manifest, "state_hash", wrong_hash));

  const ProcessResult r = run_reel({"check", trace});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  const std::string mismatch = "final state hash " + real_hash + " differs from the manifest's " + wrong_hash;
  EXPECT_NE(r.out.find("FAIL " + trace + ": " + mismatch + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0 passed, 1 failed"), std::string::npos) << r.out;
  const std::string report = read_text(trace + ".failure.txt");
  EXPECT_NE(report.find(mismatch), std::string::npos) << report;
  EXPECT_NE(report.find("timer: 50 ticks"), std::string::npos) << "the report shows the console output\n"
                                                               << report;

  // Fixed again, the check passes and the stale report goes.
  write_text(manifest_of("timer"), manifest);
  EXPECT_EQ(run_reel({"check", trace}).status, 0);
  EXPECT_FALSE(fs::exists(trace + ".failure.txt"));
}

TEST_F(VerbCheck, ConsoleAndExpectMismatchesAreNamed) {
  const std::string trace = copy_trace("timer");
  std::string manifest = read_text(manifest_of("timer"));
  const std::string console = manifest_value(manifest, "console.serial0");
  ASSERT_FALSE(console.empty()) << manifest;
  manifest = replace_line(manifest, "console.serial0", "0x0000000000000001 7");
  manifest = replace_line(manifest, "exit_status", "3");
  manifest += "expect=a line the timer guest never prints\n";
  write_text(manifest_of("timer"), manifest);
  const ProcessResult r = run_reel({"check", trace});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("FAIL " + trace + ": exit status 1 differs from the manifest's 3 (and 2 more)"),
            std::string::npos)
      << r.out;
  const std::string report = read_text(trace + ".failure.txt");
  EXPECT_NE(report.find("console serial0 output is"), std::string::npos) << report;
  EXPECT_NE(report.find("the manifest's 7 bytes (xxh3 0x0000000000000001)"), std::string::npos) << report;
  EXPECT_NE(report.find("expected string 'a line the timer guest never prints' is not in the console output"),
            std::string::npos)
      << report;
}

TEST_F(VerbCheck, ADivergingReplayFailsWithTheReplaysOwnMessage) {
  // The trace's end record claims another final state hash: the replay
  // itself throws, before the manifest is even looked at.
  const std::string trace = copy_trace("timer");
  const JournalReader original = JournalReader::open(trace, {});
  ASSERT_TRUE(original.has_end());
  EndRecord end = *original.end_record();
  const u64 real_hash = end.state_hash;
  end.state_hash ^= 0x1000;
  {
    const std::string patched = m_dir + "/patched.tmp";
    JournalWriter writer(patched, original.header());
    for (const JournalEvent& e : original.events()) {
      if (e.kind == EventKind::end) {
        writer.append(e.kind, e.icount, encode_end(end));
      } else {
        writer.append(e.kind, e.icount, e.payload);
      }
    }
    writer.close();
    fs::rename(patched, trace);
  }
  const ProcessResult r = run_reel({"check", trace});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  char expected[160];
  std::snprintf(expected, sizeof expected,
                "final machine state hash 0x%016llx differs from the recording's 0x%016llx",
                static_cast<unsigned long long>(real_hash), static_cast<unsigned long long>(end.state_hash));
  EXPECT_NE(r.out.find("FAIL " + trace + ": " + trace + ": replay diverged at icount"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(expected), std::string::npos) << r.out;
  EXPECT_NE(read_text(trace + ".failure.txt").find(expected), std::string::npos);
}

TEST_F(VerbCheck, MissingOrMalformedManifestIsBadInput) {
  const std::string trace = copy_trace("timer");
  fs::remove(manifest_of("timer"));
  ProcessResult r = run_reel({"check", trace});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(manifest_of("timer") + ": manifest is missing"), std::string::npos) << r.err;

  copy_trace("timer");
  std::string manifest = read_text(manifest_of("timer"));
  write_text(manifest_of("timer"), manifest + "colour=blue\n");
  const size_t bad_line = line_count(manifest) + 1;
  r = run_reel({"check", trace});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(
      r.err.find(manifest_of("timer") + ": line " + std::to_string(bad_line) + ": unknown key 'colour'"),
      std::string::npos)
      << r.err;

  write_text(manifest_of("timer"), replace_line(manifest, "state_hash", "12345"));
  r = run_reel({"check", trace});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("state_hash '12345' is not a 0x-prefixed hex number"), std::string::npos) << r.err;

  write_text(manifest_of("timer"), "just some text\n");
  r = run_reel({"check", trace});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find(manifest_of("timer") + ": line 1: expected key=value"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(trace + ".failure.txt")) << "bad input is no failed check";
}

TEST_F(VerbCheck, UsageErrorsAreOneLine) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"check"},
                                               {"check", "--bogus", m_dir},
                                               {"check", "--junit"},
                                               {"check", m_dir + "/no-such.reel"},
                                               {"check", m_dir}}) {
    const ProcessResult r = run_reel(args);
    EXPECT_EQ(r.status, 2) << args.back() << "\n" << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
  }
  EXPECT_NE(run_reel({"check", m_dir}).err.find(m_dir + ": no traces (*.reel files) in the directory"),
            std::string::npos);
}

TEST_F(VerbCheck, ACorruptedTraceIsOneLineOfBadInput) {
  const std::string trace = copy_trace("timer");
  std::string bytes = read_text(trace);
  ASSERT_GT(bytes.size(), 1000u);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x10);
  write_text(trace, bytes);
  const ProcessResult r = run_reel({"check", trace});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(trace), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("0 passed, 0 failed, 1 bad input"), std::string::npos) << r.out;
}

TEST_F(VerbCheck, JunitReportHasATestcasePerTrace) {
  const std::string good = copy_trace("a_good");
  const std::string bad = copy_trace("b_bad");
  write_text(manifest_of("b_bad"),
             replace_line(read_text(manifest_of("b_bad")), "state_hash", "0x00000000000000ff"));
  const std::string xml_path = m_dir + "/junit.xml";
  const ProcessResult r = run_reel({"check", "--junit", xml_path, m_dir});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("PASS " + good), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAIL " + bad), std::string::npos) << r.out;
  const std::string xml = read_text(xml_path);
  EXPECT_TRUE(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")) << xml;
  EXPECT_NE(xml.find("<testsuite name=\"reel check\" tests=\"2\" failures=\"1\" errors=\"0\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testcase classname=\"reel.check\" name=\"" + good + "\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<failure message=\"final state hash "), std::string::npos) << xml;
  EXPECT_NE(xml.find("the manifest&apos;s 0x00000000000000ff"), std::string::npos) << xml;

  // A real XML parser agrees, where python3 is there to provide one.
  if (system("python3 -c '' >/dev/null 2>&1") == 0) {
    const std::string cmd =
        "python3 -c \"import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); "
        "s = r.find('testsuite'); c = s.findall('testcase'); "
        "sys.exit(0 if len(c) == 2 and s.get('failures') == '1' and "
        "len(c[1].findall('failure')) == 1 else 1)\" " +
        xml_path;
    EXPECT_EQ(system(cmd.c_str()), 0) << xml;
  }
}

TEST_F(VerbCheck, AnEmbeddedTraceReplaysAfterItsKernelIsGone) {
  if (access(guest_path("timer").c_str(), R_OK) != 0) GTEST_SKIP() << "guest not built";
  const std::string kernel = m_dir + "/timer-copy.elf";
  fs::copy_file(guest_path("timer"), kernel);
  const auto record = [&](const std::string& name, bool embed) {
    std::vector<std::string> args = {"record"};
    if (embed) args.push_back("--embed");
    for (const std::string& a :
         {std::string("-o"), m_dir + "/" + name + ".reel", std::string("-seed"), std::string("5"),
          std::string("-kernel"), kernel, std::string("-serial"), std::string("stdio"),
          std::string("-device"), std::string("isa-debug-exit,iobase=0xf4,iosize=0x04")}) {
      args.push_back(a);
    }
    return run_reel(args);
  };
  ASSERT_EQ(record("embedded", true).status, 1);
  ASSERT_EQ(record("plain", false).status, 1);
  fs::remove(kernel);

  const std::string embedded = m_dir + "/embedded.reel";
  ProcessResult r = run_reel({"check", "--write-manifest", "--description", "timer, embedded", "--expect",
                              "timer: 50 ticks", embedded});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("WROTE " + manifest_of("embedded")), std::string::npos) << r.out;
  const std::string manifest = read_text(manifest_of("embedded"));
  EXPECT_EQ(manifest_value(manifest, "description"), "timer, embedded");
  EXPECT_EQ(manifest_value(manifest, "exit_status"), "1");
  EXPECT_EQ(manifest_value(manifest, "expect"), "timer: 50 ticks");
  r = run_reel({"check", embedded});
  EXPECT_EQ(r.status, 0) << r.out << r.err;

  // Without --embed the same recording needs the kernel, and says so.
  r = run_reel({"check", "--write-manifest", m_dir + "/plain.reel"});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(kernel), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
}

TEST(ProgressLine, FormatsEveryField) {
  ProgressLine::Sample s;
  s.icount = 12'345'678;
  s.time_ns = 1'250'000'000;
  s.events = 345;
  s.events_total = 1000;
  s.fraction = 0.345;
  EXPECT_EQ(ProgressLine::format("check t.reel", s),
            "check t.reel: 12.3M instr, 1.250 s virtual, 345/1000 events, 34%");
  s.icount = 999;
  s.fraction = 7;  // clamped
  EXPECT_EQ(ProgressLine::format("x", s), "x: 999 instr, 1.250 s virtual, 345/1000 events, 100%");
}

TEST(ProgressLine, DrawsInPlaceOnlyWhereAsked) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  const auto contents = [&] {
    std::fflush(file);
    std::rewind(file);
    std::string text;
    char buf[512];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, file)) > 0) text.append(buf, n);
    return text;
  };
  ProgressLine::Sample s;
  s.icount = 10;
  {
    // A file is no terminal: the automatic mode stays quiet.
    ProgressLine quiet("q", file);
    EXPECT_FALSE(quiet.enabled());
    quiet.update(s);
  }
  EXPECT_EQ(contents(), "");
  {
    ProgressLine line("p", file, ProgressLine::Mode::always, std::chrono::milliseconds(0));
    line.update(s);
    s.icount = 20;
    line.update(s);  // within the minimum interval: not drawn
    line.clear();
  }
  const std::string text = contents();
  {
    // Before the first delay nothing is drawn at all.
    std::FILE* other = std::tmpfile();
    ProgressLine late("l", other, ProgressLine::Mode::always, std::chrono::milliseconds(60000));
    late.update(s);
    late.clear();
    EXPECT_EQ(std::ftell(other), 0L);
    std::fclose(other);
  }
  const std::string first = "\r" + ProgressLine::format("p", ProgressLine::Sample{10, 0, 0, 0, 0});
  EXPECT_TRUE(text.starts_with(first)) << text;
  EXPECT_EQ(text.find("20 instr"), std::string::npos) << "rate limited\n" << text;
  // clear() blanks the line and returns to its start.
  EXPECT_TRUE(text.ends_with("\r" + std::string(first.size() - 1, ' ') + "\r")) << text;
  std::fclose(file);
}

TEST(ProgressLine, ReplaySampleIsByJournalBytes) {
  if (access(kSourceTrace.c_str(), R_OK) != 0) GTEST_SKIP() << "no trace at " << kSourceTrace;
  const JournalReader journal = JournalReader::open(kSourceTrace, {});
  ASSERT_GT(journal.size(), 1u);
  const ProgressLine::Sample start = ProgressLine::replay_sample(journal, 0, nullptr);
  EXPECT_EQ(start.events, 0u);
  EXPECT_EQ(start.events_total, journal.size());
  EXPECT_EQ(start.icount, 0u);
  // The header (with the embedded kernel) is not part of the share.
  EXPECT_DOUBLE_EQ(start.fraction, 0.0);
  const u64 base = journal.events()[0].offset;
  const ProgressLine::Sample one = ProgressLine::replay_sample(journal, 1, nullptr);
  EXPECT_DOUBLE_EQ(one.fraction, static_cast<double>(journal.events()[1].offset - base) /
                                     static_cast<double>(journal.file_size() - base));
  EXPECT_GT(one.fraction, 0.0);
  EXPECT_LT(one.fraction, 1.0);
  EXPECT_DOUBLE_EQ(ProgressLine::replay_sample(journal, journal.size(), nullptr).fraction, 1.0);
}

}  // namespace
}  // namespace reel::test
