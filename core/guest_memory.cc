#include "core/guest_memory.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace reel {

GuestMemory::GuestMemory(u32 bytes) {
  const u32 pages = static_cast<u32>((u64{bytes} + kPageSize - 1) >> kPageShift);
  m_size = pages << kPageShift;
  m_bytes.reset(static_cast<u8*>(std::calloc(m_size, 1)));
  if (!m_bytes) throw std::bad_alloc();
  // Every page starts zero and clean: its hash is the zero page's.
  const std::vector<u8> zero(kPageSize, 0);
  m_page_hash.assign(pages, XXH3_64bits(zero.data(), zero.size()));
  m_flags.assign(pages, kHashClean);
  for (u32 p = kVgaHoleStart >> kPageShift; p < (kVgaHoleEnd >> kPageShift) && p < pages; ++p)
    m_flags[p] |= kMmio;
}

bool GuestMemory::is_ram(u64 addr, u64 len) const {
  if (len == 0) return addr <= m_size;
  if (addr >= m_size || len > m_size - addr) return false;
  const u64 end = addr + len;
  return end <= kVgaHoleStart || addr >= kVgaHoleEnd;
}

void GuestMemory::note_write(u32 addr, u32 len) {
  if (len == 0 || addr >= m_size) return;
  const u32 first = addr >> kPageShift;
  const u32 last = static_cast<u32>(std::min<u64>(u64{addr} + len - 1, m_size - 1) >> kPageShift);
  for (u32 p = first; p <= last; ++p) {
    u8& f = m_flags[p];
    f &= static_cast<u8>(~(kHashClean | kSnapshotClean));
    if (f & kHasCode) {
      f &= static_cast<u8>(~kHasCode);
      if (m_code_listener) m_code_listener(p);
    }
    if (f & kPageTable) {
      f &= static_cast<u8>(~kPageTable);
      if (m_page_table_listener) m_page_table_listener();
    }
  }
}

void GuestMemory::note_page_table_update(u32 addr) {
  if (addr >= m_size) return;
  const u32 p = addr >> kPageShift;
  u8& f = m_flags[p];
  f &= static_cast<u8>(~(kHashClean | kSnapshotClean));
  if (f & kHasCode) {
    f &= static_cast<u8>(~kHasCode);
    if (m_code_listener) m_code_listener(p);
  }
}

bool GuestMemory::write(u32 addr, std::span<const u8> bytes) {
  if (!is_ram(addr, bytes.size())) return false;
  if (bytes.empty()) return true;
  note_write(addr, static_cast<u32>(bytes.size()));
  std::memcpy(m_bytes.get() + addr, bytes.data(), bytes.size());
  return true;
}

bool GuestMemory::read(u32 addr, std::span<u8> bytes) const {
  if (!is_ram(addr, bytes.size())) return false;
  if (!bytes.empty()) std::memcpy(bytes.data(), m_bytes.get() + addr, bytes.size());
  return true;
}

bool GuestMemory::fill(u32 addr, u8 value, u32 len) {
  if (!is_ram(addr, len)) return false;
  if (len == 0) return true;
  note_write(addr, len);
  std::memset(m_bytes.get() + addr, value, len);
  return true;
}

void GuestMemory::mark_all_dirty() {
  for (u32 p = 0; p < m_flags.size(); ++p) {
    m_flags[p] &= static_cast<u8>(~(kHashClean | kSnapshotClean));
    if (m_flags[p] & kHasCode) {
      m_flags[p] &= static_cast<u8>(~kHasCode);
      if (m_code_listener) m_code_listener(p);
    }
    if (m_flags[p] & kPageTable) {
      m_flags[p] &= static_cast<u8>(~kPageTable);
      if (m_page_table_listener) m_page_table_listener();
    }
  }
}

void GuestMemory::mark_snapshot_clean() {
  for (u8& f : m_flags) f |= kSnapshotClean;
}

void GuestMemory::restore_page(u32 page, const u8* bytes) {
  const u32 addr = page << kPageShift;
  note_write(addr, kPageSize);
  std::memcpy(m_bytes.get() + addr, bytes, kPageSize);
}

u64 GuestMemory::hash() {
  for (u32 p = 0; p < m_flags.size(); ++p) {
    if (m_flags[p] & kHashClean) continue;
    m_page_hash[p] = XXH3_64bits(m_bytes.get() + (size_t{p} << kPageShift), kPageSize);
    m_flags[p] |= kHashClean;
  }
  return XXH3_64bits(m_page_hash.data(), m_page_hash.size() * sizeof(u64));
}

}  // namespace reel
