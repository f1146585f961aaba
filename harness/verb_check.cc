// `reel check PATH...`: replays regression traces and compares each outcome
// with the manifest kept beside the trace (traces/README.md documents the
// manifest format). One line per trace, a summary, optional JUnit XML, and
// a failure report beside every trace that fails.

#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/exit_status.h"
#include "core/virtual_clock.h"
#include "harness/options.h"
#include "harness/pc_board.h"
#include "harness/progress_line.h"
#include "harness/session.h"
#include "harness/verbs.h"
#include "replay/journal.h"
#include "replay/live_consoles.h"
#include "replay/replaying_host_io.h"

namespace reel {

namespace {

namespace fs = std::filesystem;

constexpr int kManifestFormat = 1;
// Console bytes kept for the expect= search; the hash covers every byte.
constexpr size_t kMaxKeptConsoleBytes = size_t{64} << 20;

// The trace set itself is unusable (manifest, journal, input files): one
// line naming the file and the problem.
struct CheckBadInput {
  std::string message;
};

std::string hex64(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::optional<u64> parse_u64(const std::string& text, int base) {
  if (text.empty()) return std::nullopt;
  std::string digits = text;
  if (base == 16) {
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X'))
      digits = digits.substr(2);
    else
      return std::nullopt;  // hashes are written with 0x so that they read as hex
  }
  if (digits.empty() || digits.size() > (base == 16 ? 16u : 20u)) return std::nullopt;
  u64 v = 0;
  for (char c : digits) {
    int d = -1;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    if (d < 0 || d >= base) return std::nullopt;
    const u64 next = v * static_cast<u64>(base) + static_cast<u64>(d);
    if (base == 10 && (next - static_cast<u64>(d)) / 10 != v) return std::nullopt;  // overflow
    v = next;
  }
  return v;
}

// ---- The manifest.

struct ConsoleExpectation {
  u64 hash = 0;
  u64 bytes = 0;
};

struct Manifest {
  std::string description;
  std::string command;
  int exit_status = 0;
  std::string end_kind;  // optional: guest_exit, shutdown, halted...
  std::optional<u64> icount;
  std::optional<u64> time_ns;
  u64 state_hash = 0;
  std::map<std::string, ConsoleExpectation> consoles;  // by console name
  std::vector<std::string> expects;
};

std::string manifest_path_for(const std::string& trace) {
  const fs::path p(trace);
  fs::path m = p;
  m.replace_extension(".manifest");
  return m.string();
}

// Throws CheckBadInput naming the file and line.
Manifest parse_manifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckBadInput{path + ": manifest is missing (make one with 'reel check --write-manifest')"};
  Manifest m;
  bool have_format = false, have_status = false, have_hash = false;
  std::map<std::string, int> seen;
  std::string line;
  int number = 0;
  const auto bad = [&](const std::string& problem) {
    throw CheckBadInput{path + ": line " + std::to_string(number) + ": " + problem};
  };
  while (std::getline(in, line)) {
    ++number;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const size_t eq = t.find('=');
    if (eq == std::string::npos || eq == 0) bad("expected key=value, got '" + t + "'");
    const std::string key = trim(t.substr(0, eq));
    const std::string value = trim(t.substr(eq + 1));
    const bool repeatable = key == "expect";
    if (!repeatable && seen[key]++ > 0) bad("'" + key + "' appears twice");
    if (key == "format") {
      const auto v = parse_u64(value, 10);
      if (!v || *v != kManifestFormat) {
        bad("format '" + value + "' is not one this reel reads (" + std::to_string(kManifestFormat) + ")");
      }
      have_format = true;
    } else if (key == "description") {
      m.description = value;
    } else if (key == "command") {
      m.command = value;
    } else if (key == "exit_status") {
      const auto v = parse_u64(value, 10);
      if (!v || *v > 255) bad("exit_status '" + value + "' is not a number from 0 to 255");
      m.exit_status = static_cast<int>(*v);
      have_status = true;
    } else if (key == "end") {
      if (value.empty()) bad("end is empty");
      m.end_kind = value;
    } else if (key == "icount" || key == "time_ns") {
      const auto v = parse_u64(value, 10);
      if (!v) bad(key + " '" + value + "' is not a decimal number");
      (key == "icount" ? m.icount : m.time_ns) = *v;
    } else if (key == "state_hash") {
      const auto v = parse_u64(value, 16);
      if (!v) bad("state_hash '" + value + "' is not a 0x-prefixed hex number");
      m.state_hash = *v;
      have_hash = true;
    } else if (key.starts_with("console.") && key.size() > 8) {
      // console.NAME=0xHASH BYTES
      std::istringstream fields(value);
      std::string hash_text, bytes_text, extra;
      fields >> hash_text >> bytes_text;
      const auto hash = parse_u64(hash_text, 16);
      const auto bytes = parse_u64(bytes_text, 10);
      if (!hash || !bytes || (fields >> extra)) {
        bad(key + " '" + value + "' is not '0xHASH BYTES' (XXH3-64 of the output and its length)");
      }
      m.consoles[key.substr(8)] = {*hash, *bytes};
    } else if (key == "expect") {
      if (value.empty()) bad("expect is empty");
      m.expects.push_back(value);
    } else {
      bad("unknown key '" + key + "'");
    }
  }
  if (!have_format) throw CheckBadInput{path + ": no 'format=" + std::to_string(kManifestFormat) + "' line"};
  if (!have_status) throw CheckBadInput{path + ": no 'exit_status=' line"};
  if (!have_hash) throw CheckBadInput{path + ": no 'state_hash=' line"};
  return m;
}

// Single line values: a newline would start a new key.
std::string one_line(const std::string& s) {
  std::string out = s;
  std::replace(out.begin(), out.end(), '\n', ' ');
  std::replace(out.begin(), out.end(), '\r', ' ');
  return trim(out);
}

std::string format_manifest(const Manifest& m) {
  std::ostringstream out;
  out << "# reel trace manifest (traces/README.md): the expected outcome of replaying the trace\n";
  out << "format=" << kManifestFormat << "\n";
  if (!m.description.empty()) out << "description=" << one_line(m.description) << "\n";
  if (!m.command.empty()) out << "command=" << one_line(m.command) << "\n";
  out << "exit_status=" << m.exit_status << "\n";
  if (!m.end_kind.empty()) out << "end=" << m.end_kind << "\n";
  if (m.icount) out << "icount=" << *m.icount << "\n";
  if (m.time_ns) out << "time_ns=" << *m.time_ns << "\n";
  out << "state_hash=" << hex64(m.state_hash) << "\n";
  for (const auto& [name, c] : m.consoles)
    out << "console." << name << "=" << hex64(c.hash) << " " << c.bytes << "\n";
  for (const auto& e : m.expects) out << "expect=" << one_line(e) << "\n";
  return out.str();
}

// ---- Replay with the consoles captured.

// Replays as ReplayingHostIO does, but every console writes nowhere: its
// bytes are kept (and hashed) here for the manifest's checks, so a check of
// many traces does not spill guest output onto the terminal. The journal
// still verifies every console digest, since the base class sees each write.
class CheckingHostIO : public ReplayingHostIO {
 public:
  struct Console {
    std::string name;
    std::string bytes;  // up to kMaxKeptConsoleBytes
    u64 total = 0;
    std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> hash{XXH3_createState(), &XXH3_freeState};
  };

  CheckingHostIO(const JournalReader& journal, const std::string& name, ProgressLine& progress)
      : ReplayingHostIO(journal, name), m_journal(journal), m_progress(progress) {}

  void attach(const VirtualClock* clock, std::function<u64()> state_hasher) override {
    m_clock = clock;
    ReplayingHostIO::attach(clock, std::move(state_hasher));
  }

  ChannelId open_console(const ConsoleSpec& spec) override {
    ConsoleSpec quiet = spec;
    quiet.kind = ConsoleSpec::Kind::none;  // no stdout, no files, no sockets
    quiet.path.clear();
    quiet.wants_input = false;
    quiet.wait_for_client = false;
    const ChannelId id = ReplayingHostIO::open_console(quiet);
    if (id >= m_consoles.size()) m_consoles.resize(id + 1);
    m_consoles[id] = std::make_unique<Console>();
    m_consoles[id]->name = spec.name;
    XXH3_64bits_reset(m_consoles[id]->hash.get());
    return id;
  }

  void console_write(ChannelId channel, std::span<const u8> bytes) override {
    if (channel < m_consoles.size() && m_consoles[channel]) {
      Console& c = *m_consoles[channel];
      c.total += bytes.size();
      XXH3_64bits_update(c.hash.get(), bytes.data(), bytes.size());
      const size_t room = kMaxKeptConsoleBytes - std::min(kMaxKeptConsoleBytes, c.bytes.size());
      c.bytes.append(reinterpret_cast<const char*>(bytes.data()), std::min(room, bytes.size()));
    }
    ReplayingHostIO::console_write(channel, bytes);
  }

  bool boundary(InputSink& sink) override {
    const bool more = ReplayingHostIO::boundary(sink);
    if (m_progress.enabled()) m_progress.update(sample());
    return more;
  }

  ProgressLine::Sample sample() const {
    return ProgressLine::replay_sample(m_journal, events_consumed(), m_clock);
  }

  const std::vector<std::unique_ptr<Console>>& consoles() const { return m_consoles; }

 private:
  const JournalReader& m_journal;
  ProgressLine& m_progress;
  const VirtualClock* m_clock = nullptr;
  std::vector<std::unique_ptr<Console>> m_consoles;
};

// While a trace replays, the machine's own messages on stderr ("socket.0:
// connection from ...") go to a temporary file instead of between the
// check's result lines; they are kept for the failure report. The progress
// line writes to the real stderr, through a stream of its own.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    m_file = std::tmpfile();
    m_saved = dup(STDERR_FILENO);
    if (!m_file || m_saved < 0 || dup2(fileno(m_file), STDERR_FILENO) < 0) {
      restore();  // capturing is a nicety: without it the messages show, nothing else changes
      return;
    }
    const int progress_fd = dup(m_saved);
    if (progress_fd >= 0) m_terminal = fdopen(progress_fd, "w");
  }
  ~StderrCapture() {
    restore();
    if (m_terminal) std::fclose(m_terminal);
    if (m_file) std::fclose(m_file);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  // The real stderr, for the progress line.
  std::FILE* terminal() const { return m_terminal ? m_terminal : stderr; }

  // Stops capturing and returns what was written (up to about 1 MiB).
  std::string finish() {
    restore();
    std::string text;
    if (!m_file) return text;
    std::rewind(m_file);
    char buf[4096];
    size_t n = 0;
    while (text.size() < (size_t{1} << 20) && (n = std::fread(buf, 1, sizeof buf, m_file)) > 0)
      text.append(buf, n);
    return text;
  }

 private:
  void restore() {
    if (m_saved < 0) return;
    std::fflush(stderr);
    dup2(m_saved, STDERR_FILENO);
    close(m_saved);
    m_saved = -1;
  }
  std::FILE* m_file = nullptr;
  std::FILE* m_terminal = nullptr;
  int m_saved = -1;
};

struct ReplayOutcome {
  bool diverged = false;
  std::string divergence;  // what the replay threw
  int exit_status = 0;
  RunEnd end;
  std::map<std::string, ConsoleExpectation> consoles;
  std::string console_text;  // every console's kept bytes, for expect=
  bool interrupted = false;
  std::string machine_log;  // what the machine wrote on stderr
};

// Throws CheckBadInput for a trace that cannot be replayed at all.
ReplayOutcome replay_trace(const std::string& path, const std::atomic<bool>* stop) {
  ReplayOutcome out;
  std::string bad;
  // The machine's own errors share run_reporting_errors' classification;
  // only the divergence is a failed check rather than bad input.
  try {
    const JournalReader journal = JournalReader::open(path, {});
    if (!journal.has_end()) {
      throw CheckBadInput{path + ": the trace has no end record (its recording was cut short); re-record it"};
    }
    MachineOptions opts = parse_machine_options(journal.header().argv);
    opts.checkpoint_interval = journal.header().checkpoint_interval;
    StderrCapture capture;
    ProgressLine progress("check " + path, capture.terminal());
    CheckingHostIO host(journal, path, progress);
    try {
      PcBoard board(opts, host, journal.header().seed);
      out.end = board.run(stop);
      progress.clear();
    } catch (const ReplayDivergence& e) {
      progress.clear();
      out.diverged = true;
      out.divergence = e.what();
    }
    out.machine_log = capture.finish();
    out.interrupted = !out.diverged && out.end.kind == RunEnd::Kind::interrupted;
    out.exit_status = host.recorded_end() ? host.recorded_end()->status : out.end.status;
    for (const auto& c : host.consoles()) {
      if (!c) continue;
      out.consoles[c->name] = {XXH3_64bits_digest(c->hash.get()), c->total};
      out.console_text += c->bytes;
      out.console_text += '\n';
    }
    return out;
  } catch (const CheckBadInput&) {
    throw;
  } catch (const JournalError& e) {
    bad = e.what();
  } catch (const InputFileError& e) {
    bad = path + ": " + e.what();
  } catch (const OptionError& e) {
    bad = path + ": recorded options: " + e.what();
  } catch (const HelpRequested&) {
    bad = path + ": recorded options ask for help instead of a machine";
  } catch (const BadInput& e) {
    bad = path + ": " + e.what();
  } catch (const HostError& e) {
    bad = path + ": " + e.what();
  }
  throw CheckBadInput{bad};
}

// The manifest's expectations that the outcome does not meet, one line each.
std::vector<std::string> compare(const Manifest& m, const ReplayOutcome& o) {
  std::vector<std::string> mismatches;
  if (o.exit_status != m.exit_status) {
    mismatches.push_back("exit status " + std::to_string(o.exit_status) + " differs from the manifest's " +
                         std::to_string(m.exit_status));
  }
  if (!m.end_kind.empty() && m.end_kind != run_end_kind_name(o.end.kind)) {
    mismatches.push_back(std::string("the run ended by ") + run_end_kind_name(o.end.kind) +
                         ", the manifest expects " + m.end_kind);
  }
  if (m.icount && *m.icount != o.end.icount) {
    mismatches.push_back("final icount " + std::to_string(o.end.icount) + " differs from the manifest's " +
                         std::to_string(*m.icount));
  }
  if (m.time_ns && *m.time_ns != o.end.time_ns) {
    mismatches.push_back("final virtual time " + std::to_string(o.end.time_ns) +
                         " ns differs from the manifest's " + std::to_string(*m.time_ns) + " ns");
  }
  if (o.end.state_hash != m.state_hash) {
    mismatches.push_back("final state hash " + hex64(o.end.state_hash) + " differs from the manifest's " +
                         hex64(m.state_hash));
  }
  for (const auto& [name, want] : m.consoles) {
    const auto it = o.consoles.find(name);
    if (it == o.consoles.end()) {
      mismatches.push_back("console " + name + " of the manifest was never opened");
    } else if (it->second.hash != want.hash || it->second.bytes != want.bytes) {
      mismatches.push_back("console " + name + " output is " + std::to_string(it->second.bytes) +
                           " bytes (xxh3 " + hex64(it->second.hash) + "), the manifest's " +
                           std::to_string(want.bytes) + " bytes (xxh3 " + hex64(want.hash) + ")");
    }
  }
  for (const auto& [name, got] : o.consoles) {
    // A manifest without console lines checks no console.
    if (!m.consoles.empty() && !m.consoles.contains(name)) {
      mismatches.push_back("console " + name + " is not in the manifest");
    }
  }
  for (const auto& e : m.expects) {
    if (o.console_text.find(e) == std::string::npos) {
      mismatches.push_back("expected string '" + e + "' is not in the console output");
    }
  }
  return mismatches;
}

// ---- Results and reports.

struct TraceResult {
  enum class Kind : u8 { pass, fail, bad_input, wrote };
  std::string trace;
  Kind kind = Kind::pass;
  double seconds = 0;
  std::string headline;            // the one-line reason
  std::vector<std::string> lines;  // every reason
};

std::string xml_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 allows no other control characters, even escaped.
        if (c < 0x20 && c != '\n' && c != '\t')
          out += '?';
        else
          out += static_cast<char>(c);
    }
  }
  return out;
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", s);
  return buf;
}

bool write_junit(const std::string& path, const std::vector<TraceResult>& results, double total_seconds) {
  size_t failures = 0, errors = 0;
  for (const auto& r : results) {
    failures += r.kind == TraceResult::Kind::fail;
    errors += r.kind == TraceResult::Kind::bad_input;
  }
  std::ostringstream x;
  const std::string counts = "tests=\"" + std::to_string(results.size()) + "\" failures=\"" +
                             std::to_string(failures) + "\" errors=\"" + std::to_string(errors) +
                             "\" time=\"" + seconds_text(total_seconds) + "\"";
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x << "<testsuites " << counts << ">\n";
  x << "  <testsuite name=\"reel check\" " << counts << ">\n";
  for (const auto& r : results) {
    x << "    <testcase classname=\"reel.check\" name=\"" << xml_escape(r.trace) << "\" time=\""
      << seconds_text(r.seconds) << "\"";
    if (r.kind == TraceResult::Kind::pass || r.kind == TraceResult::Kind::wrote) {
      x << "/>\n";
      continue;
    }
    std::string body;
    for (const auto& l : r.lines) body += l + "\n";
    const char* tag = r.kind == TraceResult::Kind::fail ? "failure" : "error";
    x << ">\n      <" << tag << " message=\"" << xml_escape(r.headline) << "\" type=\""
      << (r.kind == TraceResult::Kind::fail ? "mismatch" : "bad_input") << "\">" << xml_escape(body) << "</"
      << tag << ">\n    </testcase>\n";
  }
  x << "  </testsuite>\n</testsuites>\n";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << x.str();
  out.close();
  return static_cast<bool>(out);
}

std::string report_path_for(const std::string& trace, const std::string& report_dir) {
  const std::string name = fs::path(trace).filename().string() + ".failure.txt";
  if (report_dir.empty()) return trace + ".failure.txt";
  return (fs::path(report_dir) / name).string();
}

void keep_failure_report(const TraceResult& r, const std::string& manifest_path, const ReplayOutcome& o,
                         const std::string& report_dir) {
  const std::string path = report_path_for(r.trace, report_dir);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << "reel check: FAIL " << r.trace << "\n";
  out << "manifest: " << manifest_path << "\n";
  out << "replay time: " << seconds_text(r.seconds) << " s\n\n";
  for (const auto& l : r.lines) out << l << "\n";
  if (!o.diverged)
    out << "\nreplay ended: " << describe_end(o.end) << " (exit status " << o.exit_status << ")\n";
  out << "\nconsoles (name, bytes, xxh3):\n";
  for (const auto& [name, c] : o.consoles)
    out << "  " << name << " " << c.bytes << " " << hex64(c.hash) << "\n";
  if (!o.machine_log.empty()) out << "\nthe machine's messages during the replay:\n" << o.machine_log;
  if (!o.console_text.empty()) {
    // The tail is where a run that went wrong usually says so.
    constexpr size_t kTail = 4096;
    const size_t from = o.console_text.size() > kTail ? o.console_text.size() - kTail : 0;
    out << "\nconsole output" << (from ? " (last 4 KiB)" : "") << ":\n" << o.console_text.substr(from);
  }
  out << "\nre-record the trace (traces/README.md) if the change in behaviour is intended; 'reel check "
         "--update "
      << r.trace << "' rewrites the manifest from a replay that does not diverge.\n";
  out.close();
  if (!out) std::fprintf(stderr, "reel: check: could not write the failure report %s\n", path.c_str());
}

void remove_stale_report(const std::string& trace, const std::string& report_dir) {
  std::error_code ec;
  fs::remove(report_path_for(trace, report_dir), ec);
}

struct CheckOptions {
  enum class Action : u8 { check, write_manifest };
  Action action = Action::check;
  std::string junit;
  std::string report_dir;
  std::string description;  // --write-manifest: for a new manifest
  std::string command;
  std::vector<std::string> expects;
};

// Expands the PATH arguments into traces, in a stable (sorted) order per
// directory. Throws CheckBadInput.
std::vector<std::string> collect_traces(const std::vector<std::string>& paths) {
  std::vector<std::string> traces;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (const auto& entry : fs::directory_iterator(p, ec)) {
        if (entry.is_regular_file() && entry.path().extension() == ".reel")
          found.push_back(entry.path().string());
      }
      if (ec) throw CheckBadInput{p + ": cannot list the directory (" + ec.message() + ")"};
      if (found.empty()) throw CheckBadInput{p + ": no traces (*.reel files) in the directory"};
      std::sort(found.begin(), found.end());
      traces.insert(traces.end(), found.begin(), found.end());
    } else if (fs::exists(p, ec)) {
      traces.push_back(p);
    } else {
      throw CheckBadInput{p + ": no such trace or directory"};
    }
  }
  return traces;
}

TraceResult check_one(const std::string& trace, const CheckOptions& options, const std::atomic<bool>* stop,
                      bool& interrupted) {
  TraceResult r;
  r.trace = trace;
  const std::string manifest_path = manifest_path_for(trace);
  const auto started = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  try {
    std::optional<Manifest> manifest;
    if (options.action == CheckOptions::Action::check) {
      manifest = parse_manifest(manifest_path);
    } else if (fs::exists(manifest_path)) {
      manifest = parse_manifest(manifest_path);  // keeps its description, command and expect lines
    }
    const ReplayOutcome o = replay_trace(trace, stop);
    r.seconds = elapsed();
    if (o.interrupted) {
      interrupted = true;
      r.kind = TraceResult::Kind::bad_input;
      r.headline = "interrupted";
      r.lines = {r.headline};
      return r;
    }
    if (o.diverged) {
      r.kind = TraceResult::Kind::fail;
      r.headline = o.divergence;
      r.lines = {o.divergence};
    } else if (options.action == CheckOptions::Action::check) {
      r.lines = compare(*manifest, o);
      if (!r.lines.empty()) {
        r.kind = TraceResult::Kind::fail;
        r.headline = r.lines.front();
        if (r.lines.size() > 1) r.headline += " (and " + std::to_string(r.lines.size() - 1) + " more)";
      }
    } else {
      Manifest m = manifest.value_or(Manifest{});
      if (!options.description.empty()) m.description = options.description;
      if (!options.command.empty()) m.command = options.command;
      // Given expect lines replace the old ones, so re-recording does not pile them up.
      if (!options.expects.empty()) m.expects = options.expects;
      m.exit_status = o.exit_status;
      m.end_kind = run_end_kind_name(o.end.kind);
      m.icount = o.end.icount;
      m.time_ns = o.end.time_ns;
      m.state_hash = o.end.state_hash;
      m.consoles = o.consoles;
      // An expect= line the output does not hold would fail every check
      // after: refuse to write it.
      for (const auto& e : m.expects) {
        if (o.console_text.find(e) == std::string::npos) {
          r.lines.push_back("expected string '" + e + "' is not in the console output");
        }
      }
      if (!r.lines.empty()) {
        r.kind = TraceResult::Kind::fail;
        r.headline = r.lines.front() + " (manifest not written)";
      } else {
        std::ofstream out(manifest_path, std::ios::binary | std::ios::trunc);
        out << format_manifest(m);
        out.close();
        if (!out) throw CheckBadInput{manifest_path + ": cannot write the manifest"};
        r.kind = TraceResult::Kind::wrote;
      }
    }
    if (r.kind == TraceResult::Kind::fail) {
      keep_failure_report(r, manifest_path, o, options.report_dir);
    } else {
      remove_stale_report(trace, options.report_dir);
    }
  } catch (const CheckBadInput& e) {
    r.seconds = elapsed();
    r.kind = TraceResult::Kind::bad_input;
    r.headline = e.message;
    r.lines = {e.message};
  }
  return r;
}

// One line, as for any bad input; traces/README.md has the rest.
void print_usage_error(const std::string& what) {
  std::fprintf(stderr,
               "reel: check: %s (usage: reel check [--junit FILE] [--report-dir DIR] [--write-manifest] "
               "PATH...)\n",
               what.c_str());
}

}  // namespace

int verb_check(const std::vector<std::string>& args) {
  CheckOptions options;
  std::vector<std::string> paths;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const auto value = [&](std::string& into) {
      if (i + 1 >= args.size()) return false;
      into = args[++i];
      return true;
    };
    bool ok = true;
    if (a == "--junit") {
      ok = value(options.junit);
    } else if (a == "--report-dir") {
      ok = value(options.report_dir);
    } else if (a == "--write-manifest" || a == "--update") {
      options.action = CheckOptions::Action::write_manifest;
    } else if (a == "--description") {
      ok = value(options.description);
    } else if (a == "--command") {
      ok = value(options.command);
    } else if (a == "--expect") {
      std::string e;
      ok = value(e);
      if (ok) options.expects.push_back(e);
    } else if (!a.empty() && a[0] == '-') {
      print_usage_error("unknown option '" + a + "'");
      return kExitBadInput;
    } else {
      paths.push_back(a);
    }
    if (!ok) {
      print_usage_error(a + ": missing argument");
      return kExitBadInput;
    }
  }
  if (paths.empty()) {
    print_usage_error("which traces? give trace files or directories");
    return kExitBadInput;
  }
  std::vector<std::string> traces;
  try {
    traces = collect_traces(paths);
  } catch (const CheckBadInput& e) {
    std::fprintf(stderr, "reel: check: %s\n", e.message.c_str());
    return kExitBadInput;
  }
  if (!options.report_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options.report_dir, ec);
  }

  const std::atomic<bool>* stop = install_stop_signals();
  const auto started = std::chrono::steady_clock::now();
  std::vector<TraceResult> results;
  size_t passed = 0, failed = 0, bad = 0, wrote = 0;
  bool interrupted = false;
  for (const auto& trace : traces) {
    TraceResult r = check_one(trace, options, stop, interrupted);
    switch (r.kind) {
      case TraceResult::Kind::pass:
        ++passed;
        std::printf("PASS %s (%.1f s)\n", trace.c_str(), r.seconds);
        break;
      case TraceResult::Kind::wrote:
        ++wrote;
        std::printf("WROTE %s (%.1f s)\n", manifest_path_for(trace).c_str(), r.seconds);
        break;
      case TraceResult::Kind::fail:
        ++failed;
        std::printf("FAIL %s: %s\n", trace.c_str(), r.headline.c_str());
        break;
      case TraceResult::Kind::bad_input:
        ++bad;
        // The one line names the file (manifest, journal or input file).
        std::fprintf(stderr, "reel: check: %s\n", r.headline.c_str());
        break;
    }
    std::fflush(stdout);
    results.push_back(std::move(r));
    if (interrupted) break;
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (options.action == CheckOptions::Action::write_manifest) {
    std::printf("%zu manifests written, %zu failed", wrote, failed);
  } else {
    std::printf("%zu passed, %zu failed", passed, failed);
  }
  if (bad) std::printf(", %zu bad input", bad);
  std::printf("\n");
  std::fflush(stdout);
  if (!options.junit.empty() && !write_junit(options.junit, results, total)) {
    std::fprintf(stderr, "reel: check: %s: cannot write the JUnit report\n", options.junit.c_str());
    return kExitBadInput;
  }
  if (interrupted) return kExitInterrupted;
  if (bad) return kExitBadInput;
  return failed ? 1 : kExitOk;
}

}  // namespace reel
