#include "replay/snapshot.h"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace reel {

namespace {

bool all_zero(const u8* p) {
  // Words, not bytes: the first capture checks every page of RAM.
  for (u32 i = 0; i < GuestMemory::kPageSize; i += 8) {
    u64 w;
    std::memcpy(&w, p + i, 8);
    if (w) return false;
  }
  return true;
}

const u8 kZeroPage[GuestMemory::kPageSize] = {};

}  // namespace

SnapshotPage::SnapshotPage(std::shared_ptr<SnapshotPageAccount> account, const u8* bytes)
    : m_account(std::move(account)) {
  std::memcpy(m_bytes.data(), bytes, m_bytes.size());
  ++m_account->pages;
}

SnapshotPage::~SnapshotPage() { --m_account->pages; }

u64 Snapshot::own_bytes() const {
  return sizeof(Snapshot) + machine_state.size() + ram.size() * sizeof(ram[0]) +
         new_chunks * sizeof(SnapshotPageChunk) +
         (cursor ? cursor->consoles.size() * sizeof(ReplayCursor::ConsoleDigest) : 0) +
         socket_handlers.size() * 64;
}

// ---- Snapshotter

Snapshotter::Snapshotter(Machine& machine, ReplayingHostIO* host)
    : m_machine(machine), m_host(host), m_account(std::make_shared<SnapshotPageAccount>()) {}

std::shared_ptr<const Snapshot> Snapshotter::capture() {
  auto s = std::make_shared<Snapshot>();
  s->owner = this;
  s->icount = m_machine.clock().icount();
  s->time_ns = m_machine.clock().now_ns();
  s->state_hash = m_machine.state_hash();
  {
    std::ostringstream os;
    {
      BinaryOut ar(os);
      m_machine.save_state(ar, Machine::StateParts::without_ram);
    }
    s->machine_state = std::move(os).str();
  }
  GuestMemory& mem = m_machine.memory();
  const u32 pages = mem.page_count();
  constexpr u32 kChunk = SnapshotPageChunk::kPages;
  s->ram.resize((pages + kChunk - 1) / kChunk);
  for (u32 c = 0; c < s->ram.size(); ++c) {
    const u32 first = c * kChunk, last = std::min(pages, first + kChunk);
    const SnapshotPageChunk* base = m_base ? m_base->ram[c].get() : nullptr;
    bool dirty = !m_base;
    for (u32 p = first; p < last && !dirty; ++p) dirty = mem.snapshot_dirty(p);
    if (!dirty) {
      s->ram[c] = m_base->ram[c];
      continue;
    }
    auto chunk = std::make_shared<SnapshotPageChunk>();
    bool any = false;
    for (u32 p = first; p < last; ++p) {
      std::shared_ptr<const SnapshotPage>& slot = chunk->pages[p - first];
      if (m_base && !mem.snapshot_dirty(p)) {
        if (base) slot = base->pages[p - first];
      } else {
        const u8* bytes = mem.data() + (size_t{p} << GuestMemory::kPageShift);
        if (!all_zero(bytes)) {
          slot = std::make_shared<const SnapshotPage>(m_account, bytes);
          s->new_page_bytes += GuestMemory::kPageSize;
        }
      }
      any = any || slot;
    }
    if (any) {
      s->ram[c] = std::move(chunk);
      ++s->new_chunks;
    }
  }
  mem.mark_snapshot_clean();
  s->socket_handlers = m_machine.socket_handlers();
  if (m_host) s->cursor = m_host->cursor();
  m_base = s;
  return s;
}

void Snapshotter::restore(const std::shared_ptr<const Snapshot>& s) {
  if (!s || s->owner != this) throw std::logic_error("snapshot restored into a machine that did not take it");
  GuestMemory& mem = m_machine.memory();
  const u32 pages = mem.page_count();
  m_pages_restored = 0;
  for (u32 p = 0; p < pages; ++p) {
    const SnapshotPage* want = s->page(p);
    // Without writes since the base, a page holds the base's copy: the
    // same copy (shared, so the same pointer) needs no restore.
    if (m_base && !mem.snapshot_dirty(p) && m_base->page(p) == want) continue;
    mem.restore_page(p, want ? want->data() : kZeroPage);
    ++m_pages_restored;
  }
  mem.mark_snapshot_clean();
  {
    std::istringstream is(s->machine_state);
    BinaryIn ar(is);
    m_machine.load_state(ar, Machine::StateParts::without_ram);
  }
  m_machine.restore_runtime(s->socket_handlers);
  if (m_host && s->cursor) m_host->restore_cursor(*s->cursor);
  m_base = s;
}

// ---- SnapshotStore

SnapshotStore::SnapshotStore(Machine& machine, ReplayingHostIO* host, Policy policy)
    : m_snapshotter(machine, host), m_policy(policy), m_interval(std::max<u64>(1, policy.interval)) {}

bool SnapshotStore::maybe_capture() {
  const u64 now = m_snapshotter.machine().clock().icount();
  auto it = m_snapshots.upper_bound(now);
  if (it != m_snapshots.begin() && now - std::prev(it)->first < m_interval) return false;
  capture();
  return true;
}

std::shared_ptr<const Snapshot> SnapshotStore::capture() {
  std::shared_ptr<const Snapshot> s = m_snapshotter.capture();
  m_snapshots[s->icount] = s;
  enforce_budget();
  return s;
}

std::optional<RunEnd> SnapshotStore::run_until(u64 target) {
  Machine& m = m_snapshotter.machine();
  for (;;) {
    maybe_capture();
    const u64 now = m.clock().icount();
    if (now >= target) return m.run_until(target);
    // The next periodic point; pausing there changes nothing in the run.
    const u64 period_start = now - now % m_interval;
    const u64 step =
        kNever - period_start <= m_interval ? target : std::min(target, period_start + m_interval);
    std::optional<RunEnd> end = m.run_until(step);
    // Paused short of the step: a debugger stop (Cpu::debug_stopped) for the caller.
    if (end || step == target || m.clock().icount() < step) return end;
  }
}

std::optional<RunEnd> SnapshotStore::seek(u64 icount) {
  if (icount < m_snapshotter.machine().clock().icount() && !restore_at_or_before(icount))
    throw std::logic_error("no snapshot at or before icount " + std::to_string(icount));
  return run_until(icount);
}

std::shared_ptr<const Snapshot> SnapshotStore::at_or_before(u64 icount) const {
  auto it = m_snapshots.upper_bound(icount);
  if (it == m_snapshots.begin()) return nullptr;
  return std::prev(it)->second;
}

std::optional<u64> SnapshotStore::restore_at_or_before(u64 icount) {
  std::shared_ptr<const Snapshot> s = at_or_before(icount);
  if (!s) return std::nullopt;
  m_snapshotter.restore(s);
  return s->icount;
}

void SnapshotStore::drop_after(u64 icount) {
  m_snapshots.erase(m_snapshots.upper_bound(icount), m_snapshots.end());
}

u64 SnapshotStore::bytes_held() const {
  u64 own = 0;
  for (const auto& [icount, s] : m_snapshots) own += s->own_bytes();
  return own + m_snapshotter.page_bytes_held();
}

void SnapshotStore::enforce_budget() {
  // Keep the first snapshot (the start of history) and the latest (where
  // the run is); thin the rest evenly until the history fits.
  while (m_snapshots.size() > 2 && bytes_held() > m_policy.max_bytes) {
    m_interval *= 2;
    bool keep = true;
    for (auto it = std::next(m_snapshots.begin()); it != std::prev(m_snapshots.end());) {
      if (keep) {
        ++it;
      } else {
        it = m_snapshots.erase(it);
      }
      keep = !keep;
    }
  }
}

}  // namespace reel
