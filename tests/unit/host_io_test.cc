// The three HostIO implementations driven directly by a scripted stand-in
// for the machine loop (no CPU): live behaviour, record -> replay giving
// the same run, and replay catching every kind of divergence.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

#include "core/virtual_clock.h"
#include "replay/journal.h"
#include "replay/live_host_io.h"
#include "replay/recording_host_io.h"
#include "replay/replaying_host_io.h"

namespace reel {
namespace {

std::string temp_path(const std::string& name) { return std::string(::testing::TempDir()) + name; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::span<const u8> bytes_of(const std::string& s) {
  return {reinterpret_cast<const u8*>(s.data()), s.size()};
}

// Follows the loop order of core/machine.cc: boundary() at every stop, then
// either a CPU slice bounded by next_stop_icount() or, while "halted",
// idle() and a timer. It halts at icount 5000 until "go" arrives and at
// 9000 until "quit" arrives; it reads the host clock every 2500
// instructions and writes a line of output per slice.
class ScriptedMachine : public InputSink {
 public:
  struct Config {
    std::string kernel;
    std::string log;
    u64 perturb_output_at = kNever;  // write an extra byte there (a bug)
    u64 perturb_state_at = kNever;   // change state there, not output
  };

  ScriptedMachine(HostIO& host, Config config) : m_host(host), m_config(std::move(config)) {
    m_host.attach(&m_clock, [this] { return state_hash(); });
    const HostFile kernel = m_host.read_file(m_config.kernel);
    if (kernel.ok) m_state = XXH3_64bits(kernel.bytes.data(), kernel.bytes.size());
    m_serial = m_host.open_console({"serial0", ConsoleSpec::Kind::stdio, "", true});
    m_log = m_host.open_console({"log", ConsoleSpec::Kind::file, m_config.log, false});
  }

  void deliver_input(ChannelId channel, std::span<const u8> bytes) override {
    EXPECT_EQ(channel, m_serial);
    m_received.append(bytes.begin(), bytes.end());
    say("got " + std::to_string(bytes.size()) + " bytes at " + std::to_string(m_clock.icount()) + "\n");
  }

  RunEnd run() {
    RunEnd end;
    end.kind = RunEnd::Kind::stuck;
    u64 idles = 0;
    for (;;) {
      if (!m_host.boundary(*this)) {
        end.kind = RunEnd::Kind::journal_end;
        break;
      }
      if (m_received.find("quit") != std::string::npos) {
        end.kind = RunEnd::Kind::guest_exit;
        end.status = 3;
        break;
      }
      const u64 now = m_clock.icount();
      const bool halted = (now >= 5000 && m_received.find("go") == std::string::npos) || now >= 9000;
      if (halted) {
        if (++idles > 100000) break;
        if (m_idle_observer) m_idle_observer->store(now);
        const std::optional<u64> resume = m_host.idle(m_timer);
        if (!resume) break;
        m_clock.advance_idle_to(*resume);
        if (m_clock.now_ns() >= m_timer) {
          say("tick\n");
          m_timer = m_clock.now_ns() + 2'000'000;
        }
        continue;
      }
      u64 target = std::min({m_host.next_stop_icount(), now + 700, (now / 2500 + 1) * 2500});
      if (now < 5000) target = std::min<u64>(target, 5000);
      if (target <= now) continue;
      m_clock.set_icount(target);
      if (target % 2500 == 0) m_state ^= static_cast<u64>(m_host.host_time_ns());
      if (target >= m_config.perturb_state_at) {
        m_state += 1;
        m_config.perturb_state_at = kNever;
      }
      say("at " + std::to_string(target) + "\n");
      if (target >= m_config.perturb_output_at) {
        say("!");
        m_config.perturb_output_at = kNever;
      }
    }
    end.icount = m_clock.icount();
    end.time_ns = m_clock.now_ns();
    end.state_hash = state_hash();
    m_host.finish(end);
    return end;
  }

  // Told the instruction count at every idle (the typist thread watches).
  void set_idle_observer(std::atomic<u64>* observer) { m_idle_observer = observer; }
  const std::string& received() const { return m_received; }
  VirtualClock& clock() { return m_clock; }

 private:
  void say(const std::string& s) { m_host.console_write(m_log, bytes_of(s)); }
  u64 state_hash() const {
    const u64 parts[4] = {m_clock.icount(), m_clock.idle_ns(), m_state,
                          XXH3_64bits(m_received.data(), m_received.size())};
    return XXH3_64bits(parts, sizeof parts);
  }

  HostIO& m_host;
  Config m_config;
  VirtualClock m_clock;
  ChannelId m_serial = 0;
  ChannelId m_log = 0;
  std::string m_received;
  u64 m_state = 0;
  u64 m_timer = 2'000'000;
  std::atomic<u64>* m_idle_observer = nullptr;
};

struct Recording {
  std::string journal;
  std::string log;
  std::string received;
  RunEnd end;
};

// Records a run whose input arrives while the machine idles.
Recording record(const std::string& name) {
  Recording rec;
  rec.journal = temp_path(name + ".reel");
  rec.log = temp_path(name + ".record.log");
  const std::string kernel = temp_path(name + ".kernel");
  write_text(kernel, "kernel image");
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  // Types each line once the machine idles waiting for it, like a person
  // at a prompt, so the journal always has inputs during idle waits.
  std::atomic<u64> idle_icount{0};
  std::thread typist([fd = fds[1], &idle_icount] {
    for (const auto& [line, halt] : {std::pair<std::string, u64>{"go\n", 5000}, {"quit\n", 9000}}) {
      while (idle_icount.load() < halt) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      EXPECT_EQ(write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    }
    close(fd);
  });
  {
    JournalHeader header;
    header.argv = {"-kernel", kernel};
    header.checkpoint_interval = 1000;
    LiveHostIO::Options options;
    options.poll_interval = 300;
    options.input_fd = fds[0];
    RecordingHostIO host(rec.journal, header, options);
    ScriptedMachine m(host, {kernel, rec.log});
    m.set_idle_observer(&idle_icount);
    rec.end = m.run();
    rec.received = m.received();
  }
  typist.join();
  close(fds[0]);
  return rec;
}

// Rewrites a journal with `edit` applied to each event.
template <class Edit>
std::string rewrite(const std::string& path, const std::string& out, Edit edit) {
  const JournalReader in = JournalReader::open(path, {});
  JournalWriter w(out, in.header());
  for (JournalEvent e : in.events()) {
    if (edit(e)) w.append(e.kind, e.icount, e.payload);
  }
  w.close();
  return out;
}

struct ReplayResult {
  std::string log;
  std::string received;
  RunEnd end;
  u64 events = 0;
  u64 checkpoints = 0;
  std::string divergence;
};

ReplayResult replay(const std::string& journal_path, const Recording& rec,
                    ScriptedMachine::Config config = {}) {
  ReplayResult r;
  const JournalReader journal = JournalReader::open(journal_path, {true});
  ReplayingHostIO host(journal, journal_path);
  config.kernel = journal.header().argv.at(1);
  config.log = rec.log + ".replay";
  try {
    ScriptedMachine m(host, config);
    r.end = m.run();
    r.received = m.received();
  } catch (const ReplayDivergence& e) {
    r.divergence = e.what();
  }
  r.events = host.events_consumed();
  r.checkpoints = host.checkpoints_verified();
  r.log = read_text(config.log);
  return r;
}

TEST(RecordReplay, ReplayRepeatsTheRecordedRun) {
  const Recording rec = record("same");
  EXPECT_EQ(rec.end.kind, RunEnd::Kind::guest_exit);
  EXPECT_EQ(rec.received, "go\nquit\n");
  const JournalReader j = JournalReader::open(rec.journal, {});
  ASSERT_TRUE(j.has_end());
  EXPECT_EQ(j.header().inputs.size(), 1u);  // the kernel, read before anything ran
  EXPECT_EQ(j.header().poll_interval, 300u);
  EXPECT_GE(j.count(EventKind::console_input), 1u);
  EXPECT_GE(j.count(EventKind::idle_advance), 2u);
  EXPECT_EQ(j.count(EventKind::console_open), 2u);
  EXPECT_EQ(j.count(EventKind::host_time), 3u);
  // Checkpoints at every multiple of the interval (0, 1000, ... 9000) and
  // at each boundary where an input from outside was journaled.
  // (An idle machine meets several boundaries at one count, so an input
  // checkpoint may share its count with a periodic one.)
  std::set<u64> periodic;
  u64 after_input = 0;
  const auto& ev = j.events();
  for (size_t i = 0; i < ev.size(); ++i) {
    if (ev[i].kind == EventKind::checkpoint) {
      if (ev[i].icount % 1000 == 0) periodic.insert(ev[i].icount);
      continue;
    }
    if (ev[i].kind != EventKind::console_input && ev[i].kind != EventKind::socket_event) continue;
    size_t k = i + 1;
    while (k < ev.size() && ev[k].icount == ev[i].icount && ev[k].kind != EventKind::checkpoint) ++k;
    EXPECT_TRUE(k < ev.size() && ev[k].kind == EventKind::checkpoint && ev[k].icount == ev[i].icount)
        << "no checkpoint after " << describe_event(ev[i]);
    ++after_input;
  }
  EXPECT_EQ(periodic.size(), 10u);
  EXPECT_GE(after_input, 1u);
  const u64 checkpoints = j.count(EventKind::checkpoint);

  const ReplayResult r = replay(rec.journal, rec);
  EXPECT_EQ(r.divergence, "");
  EXPECT_EQ(r.log, read_text(rec.log));
  EXPECT_EQ(r.received, rec.received);
  EXPECT_EQ(r.end.icount, rec.end.icount);
  EXPECT_EQ(r.end.time_ns, rec.end.time_ns);
  EXPECT_EQ(r.end.state_hash, rec.end.state_hash);
  EXPECT_EQ(r.events, j.size());
  EXPECT_EQ(r.checkpoints, checkpoints);
}

// A real recording seeds the journal reader's fuzz target
// (REEL_UPDATE_FUZZ_SEEDS=1 rewrites it).
TEST(RecordReplay, FuzzSeed) {
  if (!std::getenv("REEL_UPDATE_FUZZ_SEEDS")) GTEST_SKIP() << "REEL_UPDATE_FUZZ_SEEDS not set";
  const Recording rec = record("seed");
  write_text(REEL_SOURCE_DIR "/tests/fuzz/corpus/journal_reader_fuzz/scripted.reel", read_text(rec.journal));
}

TEST(RecordReplay, InterruptedJournalReplaysToItsLastEvent) {
  const Recording rec = record("cut");
  // Keep the events before the fourth checkpoint, as if the recording
  // had been killed there.
  int checkpoints = 0;
  u64 last_icount = 0;
  const std::string cut = rewrite(rec.journal, temp_path("cut-short.reel"), [&](const JournalEvent& e) {
    if (e.kind == EventKind::checkpoint) ++checkpoints;
    const bool keep = checkpoints <= 3 && e.kind != EventKind::end;
    if (keep) last_icount = e.icount;
    return keep;
  });
  const ReplayResult r = replay(cut, rec);
  EXPECT_EQ(r.divergence, "");
  EXPECT_EQ(r.end.kind, RunEnd::Kind::journal_end);
  EXPECT_EQ(r.end.icount, last_icount);
  EXPECT_GT(last_icount, 2000u);
  EXPECT_EQ(r.checkpoints, 3u);
}

TEST(RecordReplay, InputAtAnotherIcountDiverges) {
  const Recording rec = record("input");
  // Moves the first input to icount 3000, before the machine halted.
  const JournalReader in = JournalReader::open(rec.journal, {});
  const std::string out = temp_path("input-early.reel");
  {
    JournalWriter w(out, in.header());
    std::vector<JournalEvent> events(in.begin(), in.end());
    auto first_input = std::find_if(events.begin(), events.end(),
                                    [](const JournalEvent& e) { return e.kind == EventKind::console_input; });
    ASSERT_NE(first_input, events.end());
    JournalEvent input = *first_input;
    events.erase(first_input);
    input.icount = 3000;
    auto at =
        std::find_if(events.begin(), events.end(), [](const JournalEvent& e) { return e.icount > 3000; });
    events.insert(at, input);
    for (const JournalEvent& e : events) w.append(e.kind, e.icount, e.payload);
  }
  const ReplayResult r = replay(out, rec);
  EXPECT_NE(r.divergence.find("replay diverged at icount"), std::string::npos) << r.divergence;
}

TEST(RecordReplay, DifferentOutputDiverges) {
  const Recording rec = record("output");
  ScriptedMachine::Config buggy;
  buggy.perturb_output_at = 2000;
  const ReplayResult r = replay(rec.journal, rec, buggy);
  EXPECT_NE(r.divergence.find("console log (channel 1) output differs"), std::string::npos) << r.divergence;
  EXPECT_NE(r.divergence.find("at icount 2"), std::string::npos) << r.divergence;
}

TEST(RecordReplay, ChangedDigestDiverges) {
  const Recording rec = record("digest");
  bool changed = false;
  const std::string j = rewrite(rec.journal, temp_path("digest-changed.reel"), [&](JournalEvent& e) {
    if (e.kind == EventKind::console_digest && e.icount >= 4000 && !changed) {
      ConsoleDigestRecord d = decode_console_digest(e, "");
      d.total += 1;
      e.payload = encode_console_digest(d);
      changed = true;
    }
    return true;
  });
  ASSERT_TRUE(changed);
  const ReplayResult r = replay(j, rec);
  EXPECT_NE(r.divergence.find("output differs: the recording had"), std::string::npos) << r.divergence;
}

TEST(RecordReplay, DifferentStateDivergesAtTheNextCheckpoint) {
  const Recording rec = record("state");
  ScriptedMachine::Config buggy;
  buggy.perturb_state_at = 3100;
  const ReplayResult r = replay(rec.journal, rec, buggy);
  EXPECT_NE(r.divergence.find("replay diverged at icount 4000: machine state hash"), std::string::npos)
      << r.divergence;
}

TEST(RecordReplay, ChangedCheckpointDiverges) {
  const Recording rec = record("checkpoint");
  const std::string j = rewrite(rec.journal, temp_path("checkpoint-changed.reel"), [](JournalEvent& e) {
    if (e.kind == EventKind::checkpoint && e.icount == 6000) e.payload[0] ^= 1;
    return true;
  });
  const ReplayResult r = replay(j, rec);
  EXPECT_NE(r.divergence.find("at icount 6000: machine state hash"), std::string::npos) << r.divergence;
}

TEST(RecordReplay, MissingRequestDiverges) {
  const Recording rec = record("request");
  bool dropped = false;
  const std::string j = rewrite(rec.journal, temp_path("request-dropped.reel"), [&](const JournalEvent& e) {
    if (e.kind == EventKind::host_time && !dropped) {
      dropped = true;
      return false;
    }
    return true;
  });
  const ReplayResult r = replay(j, rec);
  EXPECT_NE(r.divergence.find("the machine asked for host_time"), std::string::npos) << r.divergence;
}

TEST(RecordReplay, ChangedEndDiverges) {
  const Recording rec = record("end");
  const std::string j = rewrite(rec.journal, temp_path("end-changed.reel"), [](JournalEvent& e) {
    if (e.kind == EventKind::end) {
      EndRecord end = decode_end(e, "");
      end.status = 5;
      e.payload = encode_end(end);
    }
    return true;
  });
  const ReplayResult r = replay(j, rec);
  EXPECT_NE(r.divergence.find("status 3) where the recording ended (guest_exit, status 5)"),
            std::string::npos)
      << r.divergence;
}

TEST(RecordReplay, InputFileChecks) {
  const Recording rec = record("inputs");
  const std::string kernel = JournalReader::open(rec.journal, {}).header().argv.at(1);
  write_text(kernel, "another kernel");
  try {
    replay(rec.journal, rec);
    FAIL();
  } catch (const InputFileError& e) {
    EXPECT_NE(std::string(e.what()).find("changed since the recording"), std::string::npos) << e.what();
  }
  unlink(kernel.c_str());
  try {
    replay(rec.journal, rec);
    FAIL();
  } catch (const InputFileError& e) {
    EXPECT_NE(std::string(e.what()).find(kernel + ": input file of the recording is missing"),
              std::string::npos)
        << e.what();
  }
  // Embedded contents need no file.
  const std::string j = temp_path("inputs-embedded.reel");
  {
    const JournalReader in = JournalReader::open(rec.journal, {});
    JournalHeader h = in.header();
    const std::string contents = "kernel image";
    h.inputs[0].embedded = true;
    h.inputs[0].bytes.assign(contents.begin(), contents.end());
    JournalWriter w(j, h);
    for (const JournalEvent& e : in) w.append(e.kind, e.icount, e.payload);
  }
  EXPECT_EQ(replay(j, rec).divergence, "");
}

// ---------------------------------------------------------------- replay, by hand

class NullSink : public InputSink {
 public:
  void deliver_input(ChannelId, std::span<const u8> bytes) override {
    text.append(bytes.begin(), bytes.end());
  }
  std::string text;
};

JournalReader hand_journal(const std::vector<std::pair<u64, std::pair<EventKind, std::vector<u8>>>>& events,
                           u64 poll_interval = 0) {
  std::ostringstream out;
  {
    JournalHeader h;
    h.poll_interval = poll_interval;
    JournalWriter w(out, h, "hand.reel");
    for (const auto& [icount, ev] : events) w.append(ev.first, icount, ev.second);
  }
  const std::string bytes = out.str();
  return JournalReader::parse({reinterpret_cast<const u8*>(bytes.data()), bytes.size()}, "hand.reel", {});
}

TEST(ReplayingHostIO, StopsAtEventsAndPollPoints) {
  const JournalReader j =
      hand_journal({{0, {EventKind::host_time, encode_host_time(7)}},
                    {500, {EventKind::console_input, encode_console_input(0, bytes_of("x"))}},
                    {5000, {EventKind::checkpoint, encode_checkpoint(0)}}},
                   /*poll_interval=*/1000);
  ReplayingHostIO host(j, "hand.reel");
  VirtualClock clock;
  host.attach(&clock, [] { return u64{0}; });
  NullSink sink;
  EXPECT_TRUE(host.boundary(sink));
  EXPECT_EQ(host.next_stop_icount(), 500u);  // the synchronous host_time does not stop the loop
  EXPECT_EQ(host.host_time_ns(), 7);
  clock.set_icount(500);
  EXPECT_TRUE(host.boundary(sink));
  EXPECT_EQ(sink.text, "x");
  EXPECT_EQ(host.next_stop_icount(), 1500u);  // the recording's poll interval
  clock.set_icount(5000);
  // A journal cut short ends with its last event.
  EXPECT_FALSE(host.boundary(sink));
  EXPECT_EQ(host.checkpoints_verified(), 1u);
  EXPECT_EQ(host.events_consumed(), 3u);
}

TEST(ReplayingHostIO, PendingRequestNeverGivesAnEmptySlice) {
  const JournalReader j = hand_journal({{100, {EventKind::host_time, encode_host_time(7)}},
                                        {100, {EventKind::checkpoint, encode_checkpoint(0)}}});
  ReplayingHostIO host(j, "hand.reel");
  VirtualClock clock;
  host.attach(&clock, [] { return u64{0}; });
  NullSink sink;
  clock.set_icount(100);
  EXPECT_TRUE(host.boundary(sink));
  EXPECT_EQ(host.next_stop_icount(), 101u);
  clock.set_icount(101);  // the machine ran on without asking for the time
  try {
    host.boundary(sink);
    FAIL();
  } catch (const ReplayDivergence& e) {
    EXPECT_EQ(
        std::string(e.what()),
        "hand.reel: replay diverged at icount 101: the journal has host_time at icount 100 (7 ns), which the "
        "replay passed without it");
  }
}

TEST(ReplayingHostIO, IdleChecksTheTimerDeadline) {
  const JournalReader j = hand_journal({{0, {EventKind::idle_advance, encode_idle_advance({900, 1000})}},
                                        {0, {EventKind::idle_advance, encode_idle_advance({950, 1000})}}});
  ReplayingHostIO host(j, "hand.reel");
  VirtualClock clock;
  host.attach(&clock, nullptr);
  EXPECT_EQ(host.idle(1000), std::optional<u64>(900));
  try {
    host.idle(std::nullopt);
    FAIL();
  } catch (const ReplayDivergence& e) {
    EXPECT_NE(std::string(e.what()).find("timer deadline at 1000 ns, the replay at none"), std::string::npos)
        << e.what();
  }
}

// Without pacing a recording journals only the idles with no deadline:
// one with a deadline at the same count returned it at once, and leaves
// the event to the idle it belongs to.
TEST(ReplayingHostIO, IdleWithADeadlineLeavesAnUndeadlinedIdlesEvent) {
  const JournalReader j = hand_journal({{0, {EventKind::idle_advance, encode_idle_advance({5000, kNever})}}});
  ReplayingHostIO host(j, "hand.reel");
  VirtualClock clock;
  host.attach(&clock, nullptr);
  EXPECT_EQ(host.idle(1000), std::optional<u64>(1000));
  EXPECT_EQ(host.events_consumed(), 0u);
  EXPECT_EQ(host.idle(std::nullopt), std::optional<u64>(5000));
  EXPECT_EQ(host.events_consumed(), 1u);
}

TEST(ReplayingHostIO, WrongRequestDiverges) {
  const JournalReader j = hand_journal({{0, {EventKind::console_open, encode_console_open({0, "serial0"})}},
                                        {10, {EventKind::host_time, encode_host_time(7)}}});
  ReplayingHostIO host(j, "hand.reel");
  VirtualClock clock;
  host.attach(&clock, nullptr);
  try {
    host.open_console({"monitor", ConsoleSpec::Kind::none, "", false});
    FAIL();
  } catch (const ReplayDivergence& e) {
    EXPECT_NE(std::string(e.what()).find("opened console serial0 as channel 0, the machine opened monitor"),
              std::string::npos)
        << e.what();
  }
  clock.set_icount(11);
  try {
    host.host_time_ns();
    FAIL();
  } catch (const ReplayDivergence& e) {
    EXPECT_EQ(
        std::string(e.what()),
        "hand.reel: replay diverged at icount 11: the journal expected host_time at icount 10 (7 ns), the "
        "machine asked for host_time");
  }
  try {
    host.read_file("x");
    FAIL();
  } catch (const ReplayDivergence& e) {
    EXPECT_NE(std::string(e.what()).find("the machine asked for file_read of x"), std::string::npos)
        << e.what();
  }
}

// ---------------------------------------------------------------- live

class CollectingSink : public InputSink {
 public:
  void deliver_input(ChannelId channel, std::span<const u8> bytes) override {
    channels.push_back(channel);
    text.append(bytes.begin(), bytes.end());
  }
  std::vector<ChannelId> channels;
  std::string text;
};

TEST(LiveHostIO, IdleWithoutInputSourcesReturnsTheDeadline) {
  LiveHostIO host({});
  VirtualClock clock;
  host.attach(&clock, nullptr);
  EXPECT_EQ(host.idle(12345), std::optional<u64>(12345));
  EXPECT_EQ(host.idle(std::nullopt), std::nullopt);
  EXPECT_EQ(host.next_stop_icount(), u64{1} << 20);
}

TEST(LiveHostIO, InputIsDeliveredAtBoundariesUntilEof) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  LiveHostIO::Options options;
  options.input_fd = fds[0];
  LiveHostIO host(options);
  VirtualClock clock;
  host.attach(&clock, nullptr);
  EXPECT_EQ(host.open_console({"monitor", ConsoleSpec::Kind::none, "", false}), 0u);
  EXPECT_EQ(host.open_console({"serial0", ConsoleSpec::Kind::stdio, "", true}), 1u);
  EXPECT_TRUE(host.has_live_inputs());
  CollectingSink sink;
  EXPECT_TRUE(host.boundary(sink));
  EXPECT_EQ(sink.text, "");
  ASSERT_EQ(write(fds[1], "abc", 3), 3);
  // Input wakes an idle wait long before the deadline.
  const auto start = std::chrono::steady_clock::now();
  const std::optional<u64> resume = host.idle(10'000'000'000);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_TRUE(resume.has_value());
  EXPECT_LT(*resume, 10'000'000'000u);
  EXPECT_TRUE(host.boundary(sink));
  EXPECT_EQ(sink.text, "abc");
  EXPECT_EQ(sink.channels, std::vector<ChannelId>{1});
  close(fds[1]);
  host.boundary(sink);
  EXPECT_FALSE(host.has_live_inputs());
  EXPECT_EQ(host.idle(std::nullopt), std::nullopt);
  close(fds[0]);
}

TEST(LiveHostIO, PacedIdleFollowsRealTime) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  LiveHostIO::Options options;
  options.input_fd = fds[0];
  LiveHostIO host(options);
  VirtualClock clock;
  host.attach(&clock, nullptr);
  host.open_console({"serial0", ConsoleSpec::Kind::stdio, "", true});
  const std::optional<u64> resume = host.idle(20'000'000);  // 20 ms
  ASSERT_TRUE(resume.has_value());
  EXPECT_EQ(*resume, 20'000'000u);  // capped at the deadline
  LiveHostIO::Options unpaced = options;
  unpaced.pacing = false;
  LiveHostIO fast(unpaced);
  fast.attach(&clock, nullptr);
  fast.open_console({"serial0", ConsoleSpec::Kind::stdio, "", true});
  EXPECT_EQ(fast.idle(u64{1} << 50), std::optional<u64>(u64{1} << 50));
  close(fds[0]);
  close(fds[1]);
}

TEST(LiveHostIO, FilesAndConsoles) {
  const std::string path = temp_path("live-file.bin");
  write_text(path, "contents");
  const HostFile f = LiveHostIO::read_host_file(path);
  EXPECT_TRUE(f.ok);
  EXPECT_EQ(std::string(f.bytes.begin(), f.bytes.end()), "contents");
  const HostFile missing = LiveHostIO::read_host_file(temp_path("no-such-file"));
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.error, "No such file or directory");
  EXPECT_FALSE(LiveHostIO::read_host_file(::testing::TempDir()).ok);

  LiveHostIO host({});
  const std::string log = temp_path("live-console.log");
  const ChannelId id = host.open_console({"serial0", ConsoleSpec::Kind::file, log, false});
  host.console_write(id, bytes_of("hello "));
  host.console_write(id, bytes_of("world"));
  EXPECT_EQ(read_text(log), "hello world");
  const LiveConsoles::Digest d = host.console_digest(id);
  EXPECT_EQ(d.total, 11u);
  EXPECT_EQ(d.hash, XXH3_64bits("hello world", 11));
  EXPECT_THROW(host.open_console({"serial1", ConsoleSpec::Kind::file, "/nonexistent-dir/x", false}),
               HostError);
  const i64 t = host.host_time_ns();
  EXPECT_GT(t, i64{1'600'000'000} * 1'000'000'000);
}

}  // namespace
}  // namespace reel
