// Whole-machine snapshots restored into a running replay: after a restore,
// running to any later instruction count gives the state hash the original
// run had there, the journal keeps agreeing (socket sends, console digests,
// checkpoints, the recorded end), for every kind of guest in traces/.

#include "replay/snapshot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "harness/disassembler.h"
#include "harness/divergence.h"
#include "replay/journal.h"

namespace reel::test {
namespace {

std::string trace_path(const std::string& name) { return std::string(REEL_SOURCE_DIR) + "/traces/" + name; }

// No periodic snapshots: the reference replay runs straight through.
SnapshotStore::Policy no_snapshots() {
  SnapshotStore::Policy p;
  p.interval = kNever;
  return p;
}

struct Reference {
  u64 end_icount = 0;
  RunEnd end;
  std::vector<u64> points;
  std::vector<u64> hashes;  // state hash at each point
};

Reference reference_run(const JournalReader& journal, const std::string& name) {
  Reference r;
  r.end_icount = journal.has_end() ? journal.end_event()->icount : 0;
  for (u64 k = 1; k < 8; ++k) r.points.push_back(r.end_icount * k / 8);
  ReplayRun run(journal, name, std::nullopt, no_snapshots());
  for (u64 p : r.points) {
    EXPECT_TRUE(run.run_to(p)) << name << " " << run.describe_finish();
    r.hashes.push_back(run.state_hash());
  }
  EXPECT_FALSE(run.run_to(kNever));
  EXPECT_FALSE(run.divergence().has_value()) << *run.divergence();
  if (run.end()) r.end = *run.end();
  return r;
}

class SnapshotTrace : public ::testing::TestWithParam<const char*> {};

// Direct capture and restore: the state hash comes back, and the run goes
// on to the same states and the recorded end (which replay checks against
// the journal: console digests, final state hash).
TEST_P(SnapshotTrace, RestoreContinuesExactlyAsTheOriginal) {
  const std::string name = trace_path(GetParam());
  const JournalReader journal = JournalReader::open(name, {});
  ASSERT_TRUE(journal.has_end());
  const Reference ref = reference_run(journal, name);
  ASSERT_GT(ref.end_icount, 1000u);

  ReplayRun run(journal, name, std::nullopt, no_snapshots());
  Snapshotter& snap = run.snapshots().snapshotter();
  ASSERT_TRUE(run.run_to(ref.points[1]));
  const std::shared_ptr<const Snapshot> s = snap.capture();
  EXPECT_EQ(s->icount, ref.points[1]);
  EXPECT_EQ(s->state_hash, ref.hashes[1]);
  ASSERT_TRUE(s->cursor.has_value());

  // Forward, back, forward again: the same hashes each time.
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 2; i < ref.points.size(); ++i) {
      ASSERT_TRUE(run.run_to(ref.points[i])) << run.describe_finish();
      EXPECT_EQ(run.state_hash(), ref.hashes[i]) << "round " << round << " icount " << ref.points[i];
    }
    snap.restore(s);
    EXPECT_EQ(run.icount(), ref.points[1]);
    EXPECT_EQ(run.state_hash(), ref.hashes[1]);
  }
  // After the end (the host side checked the recorded end), back again.
  EXPECT_FALSE(run.run_to(kNever));
  ASSERT_TRUE(run.end().has_value()) << run.describe_finish();
  EXPECT_EQ(run.end()->state_hash, ref.end.state_hash);
  ASSERT_TRUE(run.run_to(ref.points[3]));  // restores the snapshot at 0 and runs
  EXPECT_EQ(run.restores(), 1u);
  EXPECT_EQ(run.state_hash(), ref.hashes[3]);
  EXPECT_FALSE(run.run_to(kNever));
  EXPECT_FALSE(run.divergence().has_value()) << *run.divergence();
  ASSERT_TRUE(run.end().has_value());
  EXPECT_EQ(run.end()->icount, ref.end.icount);
  EXPECT_EQ(run.end()->state_hash, ref.end.state_hash);
  EXPECT_TRUE(run.host().recorded_end().has_value());
}

// Periodic snapshots: going back to any count restores the nearest one.
TEST_P(SnapshotTrace, PeriodicSnapshotsSeekBackToAnyCount) {
  const std::string name = trace_path(GetParam());
  const JournalReader journal = JournalReader::open(name, {});
  const Reference ref = reference_run(journal, name);
  SnapshotStore::Policy policy;
  policy.interval = std::max<u64>(1, ref.end_icount / 16);
  ReplayRun run(journal, name, std::nullopt, policy);
  ASSERT_TRUE(run.run_to(ref.points.back()));
  EXPECT_GE(run.snapshots().count(), 10u);
  for (size_t i = ref.points.size(); i-- > 0;) {
    ASSERT_TRUE(run.run_to(ref.points[i])) << run.describe_finish();
    EXPECT_EQ(run.state_hash(), ref.hashes[i]) << "icount " << ref.points[i];
  }
  EXPECT_EQ(run.restores(), ref.points.size() - 1);
  EXPECT_FALSE(run.run_to(kNever));
  EXPECT_FALSE(run.divergence().has_value()) << *run.divergence();
  ASSERT_TRUE(run.end().has_value());
  EXPECT_EQ(run.end()->state_hash, ref.end.state_hash);
}

INSTANTIATE_TEST_SUITE_P(Traces, SnapshotTrace,
                         ::testing::Values("timer.reel", "echo.reel", "dhcpping.reel", "tcpecho_nat.reel",
                                           "tftp_large.reel", "redir_tcpserve.reel", "netpeer_socket.reel"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string n = info.param;
                           n = n.substr(0, n.find('.'));
                           std::string out;
                           for (char c : n) out += (c == '_' ? 'X' : c);
                           return out;
                         });

TEST(Snapshot, ConsecutiveSnapshotsShareUnchangedPages) {
  const std::string name = trace_path("tftp_large.reel");
  const JournalReader journal = JournalReader::open(name, {});
  ReplayRun run(journal, name, std::nullopt, no_snapshots());
  Snapshotter& snap = run.snapshots().snapshotter();
  ASSERT_TRUE(run.run_to(2'000'000));
  const auto a = snap.capture();
  ASSERT_TRUE(run.run_to(2'001'000));
  const auto b = snap.capture();
  // The first capture since icount 0 copies the kernel and what the guest
  // wrote; a thousand instructions later only a few pages changed.
  EXPECT_GT(a->new_page_bytes, 8u * GuestMemory::kPageSize);
  EXPECT_LE(b->new_page_bytes, 8u * GuestMemory::kPageSize);
  EXPECT_GT(b->new_page_bytes, 0u);
  size_t shared = 0;
  for (u32 p = 0; p < run.machine().memory().page_count(); ++p)
    shared += a->page(p) && a->page(p) == b->page(p);
  size_t shared_chunks = 0;
  for (size_t c = 0; c < a->ram.size(); ++c) shared_chunks += a->ram[c] && a->ram[c] == b->ram[c];
  EXPECT_GT(shared_chunks, 0u);
  EXPECT_LT(b->new_chunks, 8u);
  EXPECT_GT(shared, 8u);
  // Restoring writes back only what changed since.
  ASSERT_TRUE(run.run_to(2'002'000));
  snap.restore(a);
  EXPECT_LT(snap.pages_restored_last(), 16u);
  EXPECT_EQ(run.state_hash(), a->state_hash);
}

TEST(SnapshotStore, KeepsItsHistoryUnderTheByteBudget) {
  const std::string name = trace_path("tftp_large.reel");
  const JournalReader journal = JournalReader::open(name, {});
  SnapshotStore::Policy policy;
  policy.interval = 50'000;
  ReplayRun run(journal, name, std::nullopt, policy);
  ASSERT_TRUE(run.run_to(2'000'000));
  const u64 unbounded = run.snapshots().bytes_held();
  EXPECT_GE(run.snapshots().count(), 40u);
  EXPECT_GT(unbounded, run.snapshots().snapshotter().page_bytes_held());

  SnapshotStore::Policy tight = policy;
  tight.max_bytes = unbounded / 4;
  ReplayRun small(journal, name, std::nullopt, tight);
  ASSERT_TRUE(small.run_to(2'000'000));
  EXPECT_LE(small.snapshots().bytes_held(), tight.max_bytes);
  EXPECT_GT(small.snapshots().interval(), policy.interval);
  EXPECT_GE(small.snapshots().count(), 3u);
  // Still exact, from a thinned history.
  ReplayRun ref(journal, name, std::nullopt, no_snapshots());
  ASSERT_TRUE(ref.run_to(1'234'567));
  ASSERT_TRUE(small.run_to(1'234'567));
  EXPECT_EQ(small.state_hash(), ref.state_hash());
  const auto s = small.snapshots().at_or_before(1'234'567);
  ASSERT_NE(s, nullptr);
  EXPECT_LE(s->icount, 1'234'567u);
}

// Machine::save_state / load_state with RAM (the Cereal archive alone, no
// page sharing) restores the whole machine too.
TEST(MachineState, FullArchiveRoundTripsIntoTheSameMachine) {
  const std::string name = trace_path("tftp_large.reel");
  const JournalReader journal = JournalReader::open(name, {});
  ReplayRun run(journal, name, std::nullopt, no_snapshots());
  ASSERT_TRUE(run.run_to(3'000'000));
  Machine& m = run.machine();
  const u64 at_save = m.state_hash();
  std::ostringstream os;
  {
    BinaryOut ar(os);
    m.save_state(ar);
  }
  const ReplayCursor cursor = run.host().cursor();
  const Machine::SocketHandlers handlers = m.socket_handlers();
  ASSERT_TRUE(run.run_to(4'000'000));
  const u64 later = m.state_hash();
  EXPECT_NE(later, at_save);
  {
    std::istringstream is(os.str());
    BinaryIn ar(is);
    m.load_state(ar);
  }
  m.restore_runtime(handlers);
  run.host().restore_cursor(cursor);
  EXPECT_EQ(m.clock().icount(), 3'000'000u);
  EXPECT_EQ(m.state_hash(), at_save);
  // ReplayRun still thinks it is at 4'000'000: run the machine directly.
  EXPECT_FALSE(m.run_until(4'000'000).has_value());
  EXPECT_EQ(m.state_hash(), later);
}

// A pause inside a CPU slice must not move the slice's end: the TCP NAT
// batches guest bytes for the host on a timer armed mid-slice, which fires
// where the slice ends. Pausing every few thousand instructions used to
// make this replay send different batches and diverge from its journal.
TEST(SnapshotPauses, PausingAnywhereDoesNotChangeTheRun) {
  const std::string name = trace_path("tcpecho_nat.reel");
  const JournalReader journal = JournalReader::open(name, {});
  ReplayRun run(journal, name, std::nullopt, no_snapshots());
  u64 pauses = 0;
  for (u64 t = 1'000'000; t < 1'400'000; t += 997) {
    ASSERT_TRUE(run.run_to(t)) << run.describe_finish();
    ++pauses;
  }
  EXPECT_GT(pauses, 300u);
  EXPECT_FALSE(run.run_to(kNever));
  EXPECT_FALSE(run.divergence().has_value()) << *run.divergence();
  ASSERT_TRUE(run.end().has_value());
  EXPECT_EQ(run.end()->icount, journal.end_event()->icount);
}

// seek() is what a reverse step does: back by a restore, forward by running.
TEST(SnapshotStore, SeekGoesBackAndForthToExactCounts) {
  const std::string name = trace_path("tcpecho_nat.reel");
  const JournalReader journal = JournalReader::open(name, {});
  ReplayRun ref(journal, name, std::nullopt, no_snapshots());
  const std::vector<u64> points = {3'000'001, 1'000'003, 2'500'000, 2'499'999, 7'777'777, 5};
  std::map<u64, u64> hashes;
  std::vector<u64> sorted = points;
  std::sort(sorted.begin(), sorted.end());
  for (u64 p : sorted) {
    ASSERT_TRUE(ref.run_to(p));
    hashes[p] = ref.state_hash();
  }
  SnapshotStore::Policy policy;
  policy.interval = 1'000'000;
  ReplayRun run(journal, name, std::nullopt, policy);
  SnapshotStore& store = run.snapshots();
  for (u64 p : points) {
    EXPECT_FALSE(store.seek(p).has_value()) << p;
    EXPECT_EQ(run.icount(), p);
    EXPECT_EQ(run.state_hash(), hashes[p]) << "icount " << p;
  }
  EXPECT_GE(store.count(), 8u);
  EXPECT_GT(store.bytes_held(), 0u);
}

// A replay that diverged (here, perturbed) comes back to life by going back
// before the divergence, and diverges again at the same count.
TEST(SnapshotRevival, GoingBackBeforeADivergenceRevivesTheRun) {
  const std::string name = trace_path("tcpecho_nat.reel");
  const JournalReader journal = JournalReader::open(name, {});
  const Perturbation p = parse_perturbation("2000000:reg:esi:4");
  SnapshotStore::Policy policy;
  policy.interval = 500'000;
  ReplayRun odd(journal, name, p, policy);
  EXPECT_FALSE(odd.run_to(kNever));
  ASSERT_TRUE(odd.divergence().has_value());
  const u64 diverged_at = odd.icount();
  EXPECT_GE(diverged_at, 2'000'000u);

  ReplayRun clean(journal, name, std::nullopt, no_snapshots());
  ASSERT_TRUE(clean.run_to(1'999'000));
  ASSERT_TRUE(odd.run_to(1'999'000)) << odd.describe_finish();
  EXPECT_FALSE(odd.divergence().has_value());
  EXPECT_EQ(odd.state_hash(), clean.state_hash());
  ASSERT_TRUE(clean.run_to(2'000'000));
  ASSERT_TRUE(odd.run_to(2'000'000));
  EXPECT_NE(odd.state_hash(), clean.state_hash());  // the perturbation is applied again
  EXPECT_FALSE(odd.run_to(kNever));
  ASSERT_TRUE(odd.divergence().has_value());
  EXPECT_EQ(odd.icount(), diverged_at);
}

// The search goes back by snapshots: a perturbation is still found at its
// exact count, searching from an equal point late in the run.
TEST(SnapshotSearch, LocatesAPerturbationFromALateStart) {
  const std::string name = trace_path("tftp_large.reel");
  const JournalReader journal = JournalReader::open(name, {});
  const Perturbation p = parse_perturbation("6000000:reg:edi:3");
  ReplayRun odd(journal, name, p);
  ReplayRun clean(journal, name);
  ASSERT_TRUE(clean.run_to(7'000'000));  // past it: the search must come back
  Disassembler dis;
  const auto d = locate_first_difference(odd, clean, 5'000'000, 6'500'000, dis);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->differ_icount, 6'000'000u);
  EXPECT_EQ(d->equal_icount, 5'999'999u);
  ASSERT_EQ(d->registers.size(), 1u);
  EXPECT_EQ(d->registers[0].path, "cpu.edi");
  EXPECT_GT(clean.restores(), 0u);
}

// Figures for a long recording (not part of the suite):
//   REEL_SNAPSHOT_TRACE=long.reel snapshot_test --gtest_also_run_disabled_tests
//     --gtest_filter='*DISABLED_Figures*'
TEST(SnapshotFigures, DISABLED_Figures) {
  const char* path = std::getenv("REEL_SNAPSHOT_TRACE");
  if (!path) GTEST_SKIP() << "set REEL_SNAPSHOT_TRACE";
  const JournalReader journal = JournalReader::open(path, {});
  const u64 end = journal.end_event()->icount;
  using Clock = std::chrono::steady_clock;
  auto secs = [](Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); };
  {
    ReplayRun run(journal, path, std::nullopt, no_snapshots());
    const auto t = Clock::now();
    run.run_to(kNever);
    std::printf("replay without snapshots: %.2f s\n", secs(t));
  }
  ReplayRun run(journal, path);
  auto t = Clock::now();
  ASSERT_TRUE(run.run_to(end - 1));
  std::printf(
      "replay with a snapshot every %llu instructions: %.2f s, %zu snapshots, %.1f MiB held (%.1f MiB "
      "pages)\n",
      static_cast<unsigned long long>(run.snapshots().interval()), secs(t), run.snapshots().count(),
      run.snapshots().bytes_held() / 1048576.0, run.snapshots().snapshotter().page_bytes_held() / 1048576.0);
  Snapshotter& snap = run.snapshots().snapshotter();
  t = Clock::now();
  const auto s = snap.capture();
  std::printf("one capture: %.2f ms (%llu new page bytes)\n", secs(t) * 1000,
              static_cast<unsigned long long>(s->new_page_bytes));
  t = Clock::now();
  ASSERT_TRUE(run.run_to(end / 2 + 12345));
  std::printf("seek back to icount %llu: %.2f ms (%u pages restored)\n",
              static_cast<unsigned long long>(end / 2 + 12345), secs(t) * 1000, snap.pages_restored_last());
  t = Clock::now();
  ASSERT_TRUE(run.run_to(end / 2 + 12344));
  std::printf("reverse step (seek back one instruction): %.2f ms\n", secs(t) * 1000);
}

}  // namespace
}  // namespace reel::test
