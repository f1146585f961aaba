#pragma once

#include <cstdlib>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

// Guest RAM, mapped at physical address 0. Pages between 0xA0000 and 0xC0000
// are the legacy VGA hole: they belong to the MMIO bus, not to RAM.
//
// Every page has a flag byte. A write to a page whose flags are non-zero
// takes the slow path (note_write): that is how dirty pages are found for
// hashing and how the CPU learns that guest code it decoded was modified.
// Writes to a page that is already dirty and holds no decoded code cost one
// byte load.
class GuestMemory {
 public:
  static constexpr unsigned kPageShift = 12;
  static constexpr u32 kPageSize = u32{1} << kPageShift;
  static constexpr u32 kVgaHoleStart = 0xA0000;
  static constexpr u32 kVgaHoleEnd = 0xC0000;

  enum PageFlag : u8 {
    kHashClean = 1,  // page hash cache is valid
    kHasCode = 2,    // the CPU holds decoded instructions from this page
    kMmio = 4,       // not RAM: accesses go to the MMIO bus
    // Unchanged since the last snapshot capture or restore
    // (replay/snapshot.h), which copies only the other pages.
    kSnapshotClean = 8,
    // The CPU's TLB holds a translation read from this page (a page
    // directory or page table): a write to it drops the TLB.
    kPageTable = 16,
  };

  explicit GuestMemory(u32 bytes);

  u32 size() const { return m_size; }
  u8* data() { return m_bytes.get(); }
  const u8* data() const { return m_bytes.get(); }
  u8* page_flags() { return m_flags.data(); }
  u32 page_count() const { return static_cast<u32>(m_flags.size()); }

  // True when [addr, addr+len) is RAM (inside size, outside the hole).
  bool is_ram(u64 addr, u64 len) const;

  // Slow path of a write to [addr, addr+len): marks pages dirty and calls
  // the code listener for pages that held decoded code.
  void note_write(u32 addr, u32 len);
  void mark_code_page(u32 page) { m_flags[page] |= kHasCode; }
  void set_code_listener(std::function<void(u32 page)> listener) { m_code_listener = std::move(listener); }
  void set_page_table_listener(std::function<void()> listener) {
    m_page_table_listener = std::move(listener);
  }
  // The page walker's own accessed/dirty bit updates: the page is dirty
  // (hashes, snapshots, decoded code) but the TLB stays, since A and D do
  // not change any translation it holds.
  void note_page_table_update(u32 addr);

  // Bulk access for loaders and DMA. Return false (and touch nothing) when
  // the range is not entirely RAM.
  bool write(u32 addr, std::span<const u8> bytes);
  bool read(u32 addr, std::span<u8> bytes) const;
  bool fill(u32 addr, u8 value, u32 len);

  // xxHash3 of all page hashes; only dirty pages are rehashed.
  u64 hash();

  // Snapshot support: the whole RAM contents.
  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_size));
    ar(cereal::make_nvp("bytes", cereal::binary_data(m_bytes.get(), m_size)));
    if constexpr (Archive::is_loading::value) mark_all_dirty();
  }
  void mark_all_dirty();

  // Snapshots (replay/snapshot.h) copy and restore only the pages written
  // since the last capture or restore; one Snapshotter per memory owns
  // these flags.
  bool snapshot_dirty(u32 page) const { return !(m_flags[page] & kSnapshotClean); }
  void mark_snapshot_clean();
  // Overwrites one page with a snapshot's copy as a guest write would (page
  // hash and decoded code dropped).
  void restore_page(u32 page, const u8* bytes);

 private:
  u32 m_size;
  // calloc'd: the host hands out zero pages lazily, so a large -m costs
  // nothing until the guest touches it.
  struct FreeDeleter {
    void operator()(u8* p) const { std::free(p); }
  };
  std::unique_ptr<u8[], FreeDeleter> m_bytes;
  std::vector<u8> m_flags;
  std::vector<u64> m_page_hash;
  std::function<void(u32)> m_code_listener;
  std::function<void()> m_page_table_listener;
};

}  // namespace reel
