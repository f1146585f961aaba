#pragma once

// Whole-machine snapshots of a paused machine, restored into the same
// machine while it runs: the divergence search seeks back instead of
// re-running from the start, and reverse execution (issue 6) restores the
// nearest snapshot before an instruction count and runs forward to it.
//
// A snapshot holds the Cereal binary archive of everything but RAM (clock,
// scheduler, PRNG, CPU, every device and netstack component), RAM as a table
// of 4 KiB pages shared with the other snapshots of the same machine (only
// pages written since the previous capture are copied), the replay's
// journal cursor, and the host socket routing. What no archive holds is
// rebuilt on restore: decoded code and page hashes of the pages that change
// are dropped (GuestMemory::restore_page), a pending end of run is undone.

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/machine.h"
#include "replay/replaying_host_io.h"

namespace reel {

// Bytes of RAM pages held by the snapshots of one machine, each page
// counted once however many snapshots share it.
struct SnapshotPageAccount {
  u64 pages = 0;
  u64 bytes() const { return pages * GuestMemory::kPageSize; }
};

// One page of RAM as a snapshot saw it; freed with the last snapshot that
// uses it.
class SnapshotPage {
 public:
  SnapshotPage(std::shared_ptr<SnapshotPageAccount> account, const u8* bytes);
  ~SnapshotPage();
  SnapshotPage(const SnapshotPage&) = delete;
  SnapshotPage& operator=(const SnapshotPage&) = delete;
  const u8* data() const { return m_bytes.data(); }

 private:
  std::shared_ptr<SnapshotPageAccount> m_account;
  std::array<u8, GuestMemory::kPageSize> m_bytes;
};

// A run of pages; snapshots share whole chunks when none of their pages
// changed, so a snapshot's page table costs little more than its changes.
struct SnapshotPageChunk {
  static constexpr u32 kPages = 64;
  std::array<std::shared_ptr<const SnapshotPage>, kPages> pages;  // null: all zero
};

struct Snapshot {
  u64 icount = 0;
  u64 time_ns = 0;
  u64 state_hash = 0;                                         // Machine::state_hash() when captured
  std::string machine_state;                                  // Machine::save_state(without_ram)
  std::vector<std::shared_ptr<const SnapshotPageChunk>> ram;  // by chunk; null: all zero
  std::optional<ReplayCursor> cursor;                         // when the machine replays
  Machine::SocketHandlers socket_handlers;
  const void* owner = nullptr;  // the Snapshotter that took it: restores go back there only
  u64 new_page_bytes = 0;       // pages this capture copied (the others it shares)
  u64 new_chunks = 0;           // chunk tables this capture made

  // RAM page `page` as captured (null: all zero).
  const SnapshotPage* page(u32 page) const {
    const SnapshotPageChunk* c = ram[page / SnapshotPageChunk::kPages].get();
    return c ? c->pages[page % SnapshotPageChunk::kPages].get() : nullptr;
  }

  // Bytes this snapshot holds apart from the shared pages.
  u64 own_bytes() const;
};

// Takes snapshots of one paused machine and restores them into it. RAM is
// copied and restored by the pages written since the last capture or restore
// (GuestMemory::kSnapshotClean), so its flags belong to one Snapshotter per
// machine. Capture and restore only between instructions: after
// Machine::run_until returned nullopt, before the first run, or after the run
// ended (a restore brings an ended or diverged replay back to life).
class Snapshotter {
 public:
  // `host` is the machine's replaying HostIO, or null when it does not replay.
  Snapshotter(Machine& machine, ReplayingHostIO* host);
  Snapshotter(const Snapshotter&) = delete;
  Snapshotter& operator=(const Snapshotter&) = delete;

  std::shared_ptr<const Snapshot> capture();
  // The machine continues exactly as it did from the snapshot's point.
  void restore(const std::shared_ptr<const Snapshot>& snapshot);

  Machine& machine() { return m_machine; }
  // RAM page bytes held by every snapshot taken here that is still alive.
  u64 page_bytes_held() const { return m_account->bytes(); }
  // Pages the last restore wrote (tests; a measure of restore cost).
  u32 pages_restored_last() const { return m_pages_restored; }

 private:
  Machine& m_machine;
  ReplayingHostIO* m_host;
  std::shared_ptr<SnapshotPageAccount> m_account;
  // RAM equals this snapshot's except on the pages written since.
  std::shared_ptr<const Snapshot> m_base;
  u32 m_pages_restored = 0;
};

// Periodic snapshots of one run, for going back to any earlier instruction
// count: restore the nearest snapshot at or before it, run forward. The
// interval bounds that forward run; when the snapshots hold more than
// max_bytes, every other one is dropped and the interval doubles, so a long
// session keeps a bounded history with evenly spaced snapshots.
class SnapshotStore {
 public:
  struct Policy {
    u64 interval = u64{1} << 22;     // instructions between snapshots
    u64 max_bytes = u64{512} << 20;  // pages + states + page tables
  };

  SnapshotStore(Machine& machine, ReplayingHostIO* host, Policy policy);

  // Captures when no snapshot is within the interval before the machine's
  // instruction count. Call at pauses (Machine::run_until returned nullopt).
  bool maybe_capture();
  // Captures now (replacing one at the same count).
  std::shared_ptr<const Snapshot> capture();
  // Runs the machine to `icount` like Machine::run_until, pausing on the way
  // to take the periodic snapshots. Like it, returns nullopt early when a
  // debugger stop ends a slice (the machine's icount tells where).
  std::optional<RunEnd> run_until(u64 icount);

  // Goes to `icount` from wherever the machine is: back by restoring the
  // nearest snapshot at or before it, then forward (run_until). This is
  // what a reverse step is: seek(current - 1). The result is run_until's
  // (nullopt: paused exactly there); an end before `icount` is returned as
  // the run's end. Throws std::logic_error when no snapshot precedes it.
  std::optional<RunEnd> seek(u64 icount);

  // The latest snapshot at or before `icount` (null: none).
  std::shared_ptr<const Snapshot> at_or_before(u64 icount) const;
  // Restores at_or_before(icount) and returns its count; nullopt (nothing
  // restored) when there is none.
  std::optional<u64> restore_at_or_before(u64 icount);
  // Drops the snapshots after `icount` (a replay that changed its future).
  void drop_after(u64 icount);

  Snapshotter& snapshotter() { return m_snapshotter; }
  u64 interval() const { return m_interval; }
  size_t count() const { return m_snapshots.size(); }
  u64 bytes_held() const;

 private:
  void enforce_budget();

  Snapshotter m_snapshotter;
  Policy m_policy;
  u64 m_interval;
  std::map<u64, std::shared_ptr<const Snapshot>> m_snapshots;  // by icount
};

}  // namespace reel
