#include "core/cpu/cpu.h"

#include <algorithm>
#include <cstring>

#include "core/cpu/cpu_ops.h"
#include "core/guest_memory.h"
#include "core/mmio_bus.h"
#include "core/port_bus.h"
#include "core/virtual_clock.h"

namespace reel {

namespace {
constexpr u32 kCF = 1u << 0, kPF = 1u << 2, kAF = 1u << 4, kZF = 1u << 6, kSF = 1u << 7, kTF = 1u << 8,
              kIF = 1u << 9, kOF = 1u << 11, kNT = 1u << 14, kRF = 1u << 16, kVM = 1u << 17;
constexpr u32 kArith = kCF | kPF | kAF | kZF | kSF | kOF;

bool parity(u32 v) { return !__builtin_parity(v & 0xff); }
u32 size_mask(unsigned size) { return size == 4 ? 0xffffffffu : size == 2 ? 0xffffu : 0xffu; }
u32 sign_bit(unsigned size) { return size == 4 ? 0x80000000u : size == 2 ? 0x8000u : 0x80u; }

bool contributory(u8 v) { return v == 0 || (v >= 10 && v <= 13); }

// Descriptor fields.
u32 desc_base(u64 d) { return static_cast<u32>(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000)); }
u32 desc_limit(u64 d) {
  u32 limit = static_cast<u32>((d & 0xffff) | ((d >> 32) & 0xf0000));
  if (d & (1ull << 55)) limit = (limit << 12) | 0xfff;
  return limit;
}
u16 desc_attrs(u64 d) { return static_cast<u16>((d >> 40) & 0xf0ff); }
bool desc_present(u64 d) { return d & (1ull << 47); }
unsigned desc_dpl(u64 d) { return (d >> 45) & 3; }
bool desc_is_system(u64 d) { return !(d & (1ull << 44)); }
bool desc_is_code(u64 d) { return !desc_is_system(d) && (d & (1ull << 43)); }
unsigned desc_type(u64 d) { return (d >> 40) & 0xf; }
}  // namespace

Cpu::Cpu(GuestMemory& memory, PortBus& ports, MmioBus& mmio, VirtualClock& clock)
    : m_memory(memory), m_ports(ports), m_mmio(mmio), m_clock(clock) {
  m_ram = m_memory.data();
  m_page_flags = m_memory.page_flags();
  m_ram_size = m_memory.size();
  m_page_gen.assign(m_memory.page_count(), 0);
  m_memory.set_code_listener([this](u32 page) { on_code_write(page); });
  m_memory.set_page_table_listener([this] { tlb_flush(); });
  reset();
}

// GuestMemory may outlive the CPU (tests keep it to inspect RAM).
Cpu::~Cpu() {
  m_memory.set_code_listener(nullptr);
  m_memory.set_page_table_listener(nullptr);
}

void Cpu::reset() {
  std::fill(std::begin(m_gpr), std::end(m_gpr), 0);
  m_gpr[kEdx] = 0x0480;  // 486 family 4 reset signature
  m_eip = 0xfff0;
  m_eflags = 2;
  m_lazy_op = LazyOp::none;
  for (SegmentCache& s : m_seg) s = SegmentCache{0, 0, 0xffff, 0x0093};
  m_seg[1] = SegmentCache{0xf000, 0xffff0000, 0xffff, 0x009b};
  m_gdtr = m_idtr = DescriptorTableReg{0, 0xffff};
  m_ldtr = SegmentCache{0, 0, 0xffff, 0x0082};
  m_tr = SegmentCache{0, 0, 0xffff, 0x008b};
  m_cr0 = 0x10;
  m_cr2 = m_cr3 = m_cr4 = 0;
  m_dr = {0, 0, 0, 0, 0xffff0ff0, 0x400, 0xffff0ff0, 0x400};
  m_cpl = 0;
  m_halted = false;
  m_inhibit = false;
  m_delivering = -1;
  m_exceptions.fill(0);
  paging_changed();
}

void Cpu::enter_flat_protected_mode(u32 eip) {
  m_cr0 |= 1;
  m_seg[1] = SegmentCache{0x08, 0, 0xffffffffu, 0xc09b};
  for (int s : {0, 2, 3, 4, 5}) m_seg[s] = SegmentCache{0x10, 0, 0xffffffffu, 0xc093};
  m_eflags = 2;
  m_lazy_op = LazyOp::none;
  m_eip = eip;
  m_cpl = 0;
  m_halted = false;
  paging_changed();
}

bool Cpu::halted() const { return m_halted; }

bool Cpu::interrupt_ready() const { return m_intr_line && (flags() & kIF) && !m_inhibit; }

void Cpu::intr_changed() {
  m_intr_line = m_pic && m_pic->intr_pending();
  m_attention |= kAttentionStop;
}

void Cpu::set_block_hook(BlockHook hook) { m_block_hook = std::move(hook); }

CpuRegisters Cpu::registers() const {
  CpuRegisters r;
  std::copy(m_gpr, m_gpr + 8, r.gpr);
  r.eip = m_eip;
  r.eflags = flags();
  std::copy(std::begin(m_seg), std::end(m_seg), r.seg);
  r.gdtr = m_gdtr;
  r.idtr = m_idtr;
  r.ldtr = m_ldtr;
  r.tr = m_tr;
  r.cr0 = m_cr0;
  r.cr2 = m_cr2;
  r.cr3 = m_cr3;
  r.cr4 = m_cr4;
  std::copy(m_dr.begin(), m_dr.end(), r.dr);
  return r;
}

void Cpu::set_registers(const CpuRegisters& r) {
  std::copy(std::begin(r.gpr), std::end(r.gpr), m_gpr);
  m_eip = r.eip;
  m_lazy_op = LazyOp::none;
  m_eflags = (r.eflags & 0x003f7fd5u) | 2;
  std::copy(std::begin(r.seg), std::end(r.seg), m_seg);
  m_gdtr = r.gdtr;
  m_idtr = r.idtr;
  m_ldtr = r.ldtr;
  m_tr = r.tr;
  m_cr0 = r.cr0;
  m_cr2 = r.cr2;
  m_cr3 = r.cr3;
  m_cr4 = r.cr4;
  std::copy(std::begin(r.dr), std::end(r.dr), m_dr.begin());
  m_cpl = protected_mode() ? (m_seg[1].selector & 3) : 0;
  paging_changed();
}

// ------------------------------------------------------------------ flags

void Cpu::materialize_flags() const {
  const unsigned size = m_lazy_size;
  const u32 mask = size_mask(size), sign = sign_bit(size);
  const u32 a = m_lazy_a & mask, b = m_lazy_b & mask, res = m_lazy_res & mask;
  u32 f = m_eflags & ~kArith;
  bool cf = false, of = false, af = false;
  switch (m_lazy_op) {
    case LazyOp::add:
      cf = res < a;
      of = ((a ^ res) & (b ^ res) & sign) != 0;
      af = ((a ^ b ^ res) & 0x10) != 0;
      break;
    case LazyOp::adc:
      cf = (u64{a} + b + (m_lazy_cf ? 1 : 0)) > mask;  // m_lazy_cf holds the carry in
      of = ((a ^ res) & (b ^ res) & sign) != 0;
      af = ((a ^ b ^ res) & 0x10) != 0;
      break;
    case LazyOp::sub:
      cf = a < b;
      of = ((a ^ b) & (a ^ res) & sign) != 0;
      af = ((a ^ b ^ res) & 0x10) != 0;
      break;
    case LazyOp::sbb:
      cf = u64{a} < u64{b} + (m_lazy_cf ? 1 : 0);
      of = ((a ^ b) & (a ^ res) & sign) != 0;
      af = ((a ^ b ^ res) & 0x10) != 0;
      break;
    case LazyOp::logic:
      break;
    case LazyOp::inc:
      cf = m_lazy_cf;
      of = res == sign;
      af = (res & 0xf) == 0;
      break;
    case LazyOp::dec:
      cf = m_lazy_cf;
      of = res == sign - 1;
      af = (res & 0xf) == 0xf;
      break;
    case LazyOp::shl:
    case LazyOp::shr:
    case LazyOp::sar:
      // AF is undefined after shifts; reel clears it.
      cf = CpuOps::shift_cf(m_lazy_op, size, a, m_lazy_b);
      of = CpuOps::shift_of(m_lazy_op, size, a, res, cf);
      break;
    case LazyOp::none:
      return;
  }
  if (cf) f |= kCF;
  if (of) f |= kOF;
  if (af) f |= kAF;
  if (res == 0) f |= kZF;
  if (res & sign) f |= kSF;
  if (parity(res)) f |= kPF;
  m_eflags = f;
  m_lazy_op = LazyOp::none;
}

void Cpu::write_flags(u32 value, u32 mask) {
  materialize_flags();
  m_eflags = ((m_eflags & ~mask) | (value & mask) | 2) & ~(1u << 3 | 1u << 5 | 1u << 15);
}

// ------------------------------------------------------------------ memory

void Cpu::fault(u8 vector, u32 error, bool has_error) { throw Fault{vector, has_error, error}; }

u32 Cpu::seg_linear(int seg, u32 offset, unsigned size, bool write) {
  const SegmentCache& s = m_seg[seg];
  if (s.limit == 0xffffffffu && offset <= 0xffffffffu - (size - 1) && protected_mode()) {
    // Flat 4 GiB segments, the common case: present expand-up data
    // (writable for writes) or readable code.
    const u16 a = s.attrs;
    if (write ? (a & 0x9e) == 0x92 : ((a & 0x9c) == 0x90 || (a & 0x9a) == 0x9a)) return s.base + offset;
  }
  if (!protected_mode()) {
    // Real mode still honours the cached limit (64 KiB unless unreal).
    if (offset > s.limit || s.limit - offset < size - 1) fault(seg == 2 ? 12 : 13, 0);
    return s.base + offset;
  }
  if ((s.attrs & 0x80) == 0) fault(seg == 2 ? 12 : 13, 0);  // null or not usable
  const unsigned type = s.attrs & 0xf;
  if (write && ((type & 0x8) || !(type & 0x2))) fault(13, 0);  // code, or read-only data
  if (!write && (type & 0x8) && !(type & 0x2)) fault(13, 0);   // execute-only code
  const u32 last = offset + (size - 1);
  if (!(type & 0x8) && (type & 0x4)) {
    // Expand-down: valid offsets lie above the limit.
    const u32 upper = (s.attrs & 0x4000) ? 0xffffffffu : 0xffffu;
    if (offset <= s.limit || last > upper || last < offset) fault(seg == 2 ? 12 : 13, 0);
  } else if (offset > s.limit || s.limit - offset < size - 1) {
    fault(seg == 2 ? 12 : 13, 0);
  }
  return s.base + offset;
}

namespace {
// A RAM byte: inside memory and not on an MMIO page.
bool ram_at(const u8* flags, u32 size, u32 addr) {
  return addr < size && !(flags[addr >> GuestMemory::kPageShift] & GuestMemory::kMmio);
}
}  // namespace

u32 Cpu::read_phys(u32 addr, unsigned size, u32 lin) {
  const u32 page = addr >> GuestMemory::kPageShift;
  const bool one_page = ((addr + size - 1) >> GuestMemory::kPageShift) == page;
  if (one_page && u64{addr} + size <= m_ram_size) {
    // A watched page (debugger) takes the byte loop below.
    if (!(m_page_flags[page] & (GuestMemory::kMmio | kDebugWatchPage))) {
      u32 v = 0;
      std::memcpy(&v, m_ram + addr, size);
      return v;
    }
  }
  // A device sees one access of the instruction's size, as on the bus.
  if (one_page && !ram_at(m_page_flags, m_ram_size, addr)) return m_mmio.read(addr, size);
  u32 v = 0;
  for (unsigned i = 0; i < size; ++i) {
    const u32 a = addr + i;
    const bool ram = ram_at(m_page_flags, m_ram_size, a);
    if (ram && (m_page_flags[a >> GuestMemory::kPageShift] & kDebugWatchPage))
      debug_access(lin + i, 1, false);
    const u32 byte = ram ? m_ram[a] : (m_mmio.read(a, 1) & 0xff);
    v |= byte << (8 * i);
  }
  return v;
}

void Cpu::write_phys(u32 addr, unsigned size, u32 value, u32 lin) {
  const u32 page = addr >> GuestMemory::kPageShift;
  const bool one_page = ((addr + size - 1) >> GuestMemory::kPageShift) == page;
  if (one_page && u64{addr} + size <= m_ram_size) {
    const u8 flags = m_page_flags[page];
    if (!(flags & GuestMemory::kMmio)) {
      if (flags) {
        if (flags & kDebugWatchPage) debug_access(lin, size, true);
        note_flagged_write(addr, size);
      }
      std::memcpy(m_ram + addr, &value, size);
      return;
    }
  }
  if (one_page && !ram_at(m_page_flags, m_ram_size, addr)) {
    m_mmio.write(addr, size, value);
    return;
  }
  for (unsigned i = 0; i < size; ++i) {
    const u32 a = addr + i;
    const u8 byte = static_cast<u8>(value >> (8 * i));
    if (ram_at(m_page_flags, m_ram_size, a)) {
      if (const u8 flags = m_page_flags[a >> GuestMemory::kPageShift]) {
        if (flags & kDebugWatchPage) debug_access(lin + i, 1, true);
        note_flagged_write(a, 1);
      }
      m_ram[a] = byte;
    } else {
      m_mmio.write(a, 1, byte);
    }
  }
}

// ------------------------------------------------------------------ debugger

void Cpu::set_breakpoints(std::vector<u32> linear) {
  std::sort(linear.begin(), linear.end());
  linear.erase(std::unique(linear.begin(), linear.end()), linear.end());
  m_breakpoints = std::move(linear);
  update_debug_mode();
}

void Cpu::set_watchpoints(std::vector<Watchpoint> watchpoints) {
  m_watchpoints = std::move(watchpoints);
  flag_watched_pages();
  update_debug_mode();
}

// Watchpoints are on linear addresses, as the 486's debug registers are,
// but what sends an access to the slow path is a flag on the physical page
// (kDebugWatchPage), which the fast paths test anyway. So the flags go on
// the pages the watched linear pages map to now, and debug_access compares
// linear addresses: an alias of a watched page (another linear page mapped
// to the same physical one) takes the slow path but never hits. The
// mapping can change (CR3 loads, page-table writes, CR0/CR4): each such
// change drops the TLB (tlb_flush, which marks these flags stale), and
// run_debug puts them back here before the next instruction. The directory
// and table pages read on the way carry GuestMemory::kPageTable as the
// TLB's do, so a write that maps a watched page (even one unmapped now)
// drops the TLB too. Within the instruction that changes the mapping the
// flags still follow the old one: an access to the watched page later in
// that same instruction can be missed.
void Cpu::flag_watched_pages() {
  m_watch_flags_stale = false;
  for (const u32 page : m_watched_pages) m_page_flags[page] &= static_cast<u8>(~kDebugWatchPage);
  m_watched_pages.clear();
  const u32 pages = m_memory.page_count();
  for (const Watchpoint& w : m_watchpoints) {
    if (w.length == 0) continue;
    const u64 last = std::min<u64>(u64{w.address} + w.length - 1, 0xffffffffu);
    for (u64 lp = w.address >> GuestMemory::kPageShift; lp <= (last >> GuestMemory::kPageShift); ++lp) {
      u32 phys = 0;
      u32 tables[2];
      const bool mapped = debug_walk(static_cast<u32>(lp << GuestMemory::kPageShift), phys, tables);
      for (const u32 t : tables) {
        if (t >= pages || (m_page_flags[t] & GuestMemory::kPageTable)) continue;
        m_page_flags[t] |= GuestMemory::kPageTable;
        m_page_table_pages.push_back(t);
      }
      const u32 p = phys >> GuestMemory::kPageShift;
      if (!mapped || p >= pages || (m_page_flags[p] & kDebugWatchPage)) continue;
      m_page_flags[p] |= kDebugWatchPage;
      m_watched_pages.push_back(p);
    }
  }
}

// Out of line so the write paths that call it stay small: a flagged page
// is the rare case.
void Cpu::note_flagged_write(u32 phys, unsigned size) { m_memory.note_write(phys, size); }

// An access to a page holding a watchpoint, at linear address `lin`: the
// first overlapping watchpoint of a matching kind ends the instruction's run
// (reported after it retires).
void Cpu::debug_access(u32 lin, unsigned size, bool write) {
  if (m_debug_stop.kind != DebugStopKind::none) return;
  for (const Watchpoint& w : m_watchpoints) {
    const bool kind_ok = w.kind == DebugStopKind::watch_access ||
                         (write ? w.kind == DebugStopKind::watch_write : w.kind == DebugStopKind::watch_read);
    if (!kind_ok) continue;
    if (u64{lin} + size <= w.address || u64{w.address} + w.length <= lin) continue;
    m_debug_stop = {w.kind, w.address};
    m_attention |= kAttentionStop;
    return;
  }
}

// An access that crosses a page boundary translates each byte on its own, so
// paging can map the two pages anywhere.
u32 Cpu::read_lin_as(u32 lin, unsigned size, bool user) {
  if ((lin & (GuestMemory::kPageSize - 1)) <= GuestMemory::kPageSize - size)
    return read_phys(translate_as(lin, false, user), size, lin);
  u32 v = 0;
  for (unsigned i = 0; i < size; ++i)
    v |= read_phys(translate_as(lin + i, false, user), 1, lin + i) << (8 * i);
  return v;
}
void Cpu::write_lin_as(u32 lin, unsigned size, u32 value, bool user) {
  if ((lin & (GuestMemory::kPageSize - 1)) <= GuestMemory::kPageSize - size) {
    write_phys(translate_as(lin, true, user), size, value, lin);
    return;
  }
  // Translate every byte first, so a page fault on the second page leaves
  // memory untouched.
  u32 phys[4];
  for (unsigned i = 0; i < size; ++i) phys[i] = translate_as(lin + i, true, user);
  for (unsigned i = 0; i < size; ++i) write_phys(phys[i], 1, (value >> (8 * i)) & 0xff, lin + i);
}

// ------------------------------------------------------------------ paging

void Cpu::paging_changed() {
  m_paging = (m_cr0 & 0x80000001u) == 0x80000001u;
  tlb_flush();
}

void Cpu::tlb_flush() {
  for (TlbEntry& e : m_tlb) e = TlbEntry{};
  for (const u32 page : m_page_table_pages) m_page_flags[page] &= static_cast<u8>(~GuestMemory::kPageTable);
  m_page_table_pages.clear();
  // The running block may have been fetched through a translation that
  // is gone: make the loop look its next block up again.
  m_attention |= kAttentionStop;
  // Not now: from a page-table write this runs before the new entry is in
  // memory (GuestMemory::note_write comes first).
  m_watch_flags_stale = true;
}

void Cpu::tlb_flush_page(u32 lin) {
  const u32 slot = (lin >> 12) & (kTlbSize - 1);
  m_tlb[slot] = TlbEntry{};
  m_tlb[kTlbSize + slot] = TlbEntry{};
}

bool Cpu::debug_translate(u32 lin, u32& phys) const {
  u32 tables[2];
  return debug_walk(lin, phys, tables);
}

bool Cpu::debug_walk(u32 lin, u32& phys, u32 (&tables)[2]) const {
  tables[0] = tables[1] = ~0u;
  if (!m_paging) {
    phys = lin;
    return true;
  }
  const auto read_entry = [this](u32 addr) -> u32 {
    if (u64{addr} + 4 > m_ram_size) return 0;
    u32 v;
    std::memcpy(&v, m_ram + addr, 4);
    return v;
  };
  const u32 pde_addr = (m_cr3 & 0xfffff000u) | ((lin >> 20) & 0xffcu);
  tables[0] = pde_addr >> GuestMemory::kPageShift;
  const u32 pde = read_entry(pde_addr);
  if (!(pde & 1)) return false;
  if ((pde & 0x80) && (m_cr4 & 0x10)) {
    phys = (pde & 0xffc00000u) | (lin & 0x003fffffu);
    return true;
  }
  const u32 pte_addr = (pde & 0xfffff000u) | ((lin >> 10) & 0xffcu);
  tables[1] = pte_addr >> GuestMemory::kPageShift;
  const u32 pte = read_entry(pte_addr);
  if (!(pte & 1)) return false;
  phys = (pte & 0xfffff000u) | (lin & 0xfffu);
  return true;
}

// A TLB miss: walks the page directory and page table at CR3 as a 486 does
// (accessed bits set on the way, the dirty bit on a write), raises #PF with
// the architecture's error code (P: the page was present, W/R: a write,
// U/S: a CPL 3 access) and CR2, or fills the TLB entry and returns the
// physical address. Page-table entries that point past RAM read as zero
// there (the bus floats), which makes the walk find them not present.
u32 Cpu::walk_pages(u32 lin, bool write, bool user) {
  const auto read_entry = [this](u32 addr) -> u32 {
    if (u64{addr} + 4 > m_ram_size) return 0;
    u32 v;
    std::memcpy(&v, m_ram + addr, 4);
    return v;
  };
  const auto set_bits = [this](u32 addr, u32 entry, u32 bits) {
    if ((entry & bits) == bits || u64{addr} + 4 > m_ram_size) return;
    entry |= bits;
    std::memcpy(m_ram + addr, &entry, 4);
    m_memory.note_page_table_update(addr);
  };
  const auto page_fault = [&](bool present) {
    m_cr2 = lin;
    fault(14, (present ? 1u : 0u) | (write ? 2u : 0u) | (user ? 4u : 0u));
  };
  const bool wp = m_cr0 & 0x00010000u;
  const u32 pde_addr = (m_cr3 & 0xfffff000u) | ((lin >> 20) & 0xffcu);
  const u32 pde = read_entry(pde_addr);
  if (!(pde & 1)) page_fault(false);
  u32 phys_page;
  bool writable, user_ok, dirty;
  u32 table_page = ~0u;
  if ((pde & 0x80) && (m_cr4 & 0x10)) {
    // A 4 MiB page (CR4.PSE): the PDE maps it directly.
    writable = pde & 2;
    user_ok = pde & 4;
    if (user && !user_ok) page_fault(true);
    if (write && !writable && (user || wp)) page_fault(true);
    set_bits(pde_addr, pde, write ? 0x60u : 0x20u);
    dirty = write || (pde & 0x40);
    phys_page = (pde & 0xffc00000u) | (lin & 0x003ff000u);
  } else {
    const u32 pte_addr = (pde & 0xfffff000u) | ((lin >> 10) & 0xffcu);
    const u32 pte = read_entry(pte_addr);
    if (!(pte & 1)) page_fault(false);
    // The stricter of the two levels applies.
    writable = (pde & pte & 2) != 0;
    user_ok = (pde & pte & 4) != 0;
    if (user && !user_ok) page_fault(true);
    if (write && !writable && (user || wp)) page_fault(true);
    set_bits(pde_addr, pde, 0x20u);
    set_bits(pte_addr, pte, write ? 0x60u : 0x20u);
    dirty = write || (pte & 0x40);
    phys_page = pte & 0xfffff000u;
    table_page = pte_addr >> GuestMemory::kPageShift;
  }
  // Remember which pages this translation came from, so a write to them
  // drops it (see TlbEntry).
  for (const u32 page : {pde_addr >> GuestMemory::kPageShift, table_page}) {
    if (page >= m_memory.page_count() || (m_page_flags[page] & GuestMemory::kPageTable)) continue;
    m_page_flags[page] |= GuestMemory::kPageTable;
    m_page_table_pages.push_back(page);
  }
  TlbEntry& e = m_tlb[(user ? kTlbSize : 0) + ((lin >> 12) & (kTlbSize - 1))];
  const u32 lin_page = lin & 0xfffff000u;
  e.phys = phys_page;
  e.read_tag = lin_page;
  // A supervisor write to a read-only page is allowed while CR0.WP is clear.
  e.write_tag = (dirty && (writable || (!user && !wp))) ? lin_page : 1u;
  return phys_page | (lin & 0xfffu);
}

// ------------------------------------------------------------------ segments

u64 Cpu::read_descriptor(u16 selector, bool ext_error) {
  const u32 index = selector & 0xfff8u;
  const bool local = selector & 4;
  const u32 base = local ? m_ldtr.base : m_gdtr.base;
  const u32 limit = local ? m_ldtr.limit : m_gdtr.limit;
  if ((local && !(m_ldtr.attrs & 0x80)) || index + 7 > limit)
    fault(13, (selector & 0xfffc) | (ext_error ? 1 : 0));
  return u64{read_sys(base + index, 4)} | u64{read_sys(base + index + 4, 4)} << 32;
}

void Cpu::write_descriptor_accessed(u16 selector, u64 desc) {
  if (desc & (1ull << 40)) return;
  const u32 base = (selector & 4) ? m_ldtr.base : m_gdtr.base;
  const u32 addr = base + (selector & 0xfff8u) + 5;
  write_sys(addr, 1, static_cast<u8>((desc >> 40) | 1));
}

void Cpu::set_seg_from_desc(int seg, u16 selector, u64 desc) {
  SegmentCache& s = m_seg[seg];
  s.selector = selector;
  s.base = desc_base(desc);
  s.limit = desc_limit(desc);
  s.attrs = static_cast<u16>(desc_attrs(desc) | 0x01);  // accessed
}

void Cpu::load_segment_real(int seg, u16 selector) {
  SegmentCache& s = m_seg[seg];
  s.selector = selector;
  s.base = u32{selector} << 4;
  if (seg == 1) s.attrs = (s.attrs & ~0x0f00u) | 0x009b;
}

void Cpu::load_segment(int seg, u16 selector) {
  if (!protected_mode()) {
    load_segment_real(seg, selector);
    return;
  }
  const u16 err = selector & 0xfffc;
  if ((selector & 0xfffc) == 0) {
    if (seg == 2) fault(13, 0);
    // A null selector loads an unusable segment; using it faults.
    m_seg[seg] = SegmentCache{selector, 0, 0, 0};
    return;
  }
  const u64 d = read_descriptor(selector);
  const unsigned rpl = selector & 3, dpl = desc_dpl(d);
  if (seg == 2) {
    if (rpl != m_cpl || dpl != m_cpl || desc_is_system(d) || desc_is_code(d) || !(desc_type(d) & 2))
      fault(13, err);
    if (!desc_present(d)) fault(12, err);
  } else {
    if (desc_is_system(d)) fault(13, err);
    if (desc_is_code(d) && !(desc_type(d) & 2)) fault(13, err);  // execute-only
    const bool conforming_code = desc_is_code(d) && (desc_type(d) & 4);
    if (!conforming_code && (rpl > dpl || m_cpl > dpl)) fault(13, err);
    if (!desc_present(d)) fault(11, err);
  }
  write_descriptor_accessed(selector, d);
  set_seg_from_desc(seg, selector, d);
}

// ------------------------------------------------------------------ stack

void Cpu::push(u32 value, unsigned size) {
  const u32 esp = stack32() ? m_gpr[kEsp] : (m_gpr[kEsp] & 0xffff);
  const u32 new_sp = esp - size;
  const u32 off = stack32() ? new_sp : (new_sp & 0xffff);
  write_mem(2, off, size, value);
  if (stack32()) {
    m_gpr[kEsp] = new_sp;
  } else {
    m_gpr[kEsp] = (m_gpr[kEsp] & 0xffff0000u) | (new_sp & 0xffff);
  }
}

u32 Cpu::pop(unsigned size) {
  const u32 sp = stack32() ? m_gpr[kEsp] : (m_gpr[kEsp] & 0xffff);
  const u32 v = read_mem(2, sp, size);
  if (stack32()) {
    m_gpr[kEsp] = sp + size;
  } else {
    m_gpr[kEsp] = (m_gpr[kEsp] & 0xffff0000u) | ((sp + size) & 0xffff);
  }
  return v;
}

// ------------------------------------------------------------------ interrupts

void Cpu::deliver(u8 vector, bool software, bool has_error, u32 error, u32 return_eip) {
  const u32 old_flags = flags();
  if (!protected_mode()) {
    if (u32{vector} * 4 + 3 > m_idtr.limit) fault(13, 0);  // real-mode IVT limit: shutdown path
    const u32 entry = read_sys(m_idtr.base + u32{vector} * 4, 4);
    push(old_flags, 2);
    push(m_seg[1].selector, 2);
    push(return_eip, 2);
    m_eflags &= ~(kIF | kTF | (1u << 18));
    load_segment_real(1, static_cast<u16>(entry >> 16));
    m_eip = entry & 0xffff;
    return;
  }
  const u32 ext = software ? 0 : 1;
  const u32 gate_err = u32{vector} * 8 + 2 + ext;
  if (u32{vector} * 8 + 7 > m_idtr.limit) fault(13, gate_err);
  const u64 gate = u64{read_sys(m_idtr.base + u32{vector} * 8, 4)} |
                   u64{read_sys(m_idtr.base + u32{vector} * 8 + 4, 4)} << 32;
  const unsigned type = (gate >> 40) & 0x1f;
  const bool is32 = type == 0x0e || type == 0x0f;
  const bool trap = type == 0x0f || type == 0x07;
  if (type != 0x0e && type != 0x0f && type != 0x06 && type != 0x07)
    fault(13, gate_err);  // task gates unsupported
  if (software && ((gate >> 45) & 3) < m_cpl) fault(13, gate_err);
  if (!(gate & (1ull << 47))) fault(11, gate_err);
  const u16 cs_sel = static_cast<u16>(gate >> 16);
  const u32 offset = static_cast<u32>((gate & 0xffff) | ((gate >> 32) & 0xffff0000u));
  if ((cs_sel & 0xfffc) == 0) fault(13, ext);
  const u64 cs_desc = read_descriptor(cs_sel, !software);
  const unsigned dpl = desc_dpl(cs_desc);
  if (!desc_is_code(cs_desc) || dpl > m_cpl) fault(13, (cs_sel & 0xfffc) | ext);
  if (!desc_present(cs_desc)) fault(11, (cs_sel & 0xfffc) | ext);
  const unsigned size = is32 ? 4 : 2;
  const bool conforming = desc_type(cs_desc) & 4;
  if (!conforming && dpl < m_cpl) {
    // Inner privilege: switch to the stack named by the TSS.
    const bool tss32 = (m_tr.attrs & 0xf) == 0x9 || (m_tr.attrs & 0xf) == 0xb;
    const u32 at = tss32 ? 4 + dpl * 8 : 2 + dpl * 4;
    if (at + (tss32 ? 7 : 3) > m_tr.limit) fault(10, m_tr.selector & 0xfffc);
    const u32 new_esp = tss32 ? read_sys(m_tr.base + at, 4) : read_sys(m_tr.base + at, 2);
    const u16 new_ss = static_cast<u16>(read_sys(m_tr.base + at + (tss32 ? 4 : 2), 2));
    const u16 old_ss = m_seg[2].selector;
    const u32 old_esp = m_gpr[kEsp];
    const u8 old_cpl = m_cpl;
    m_cpl = static_cast<u8>(dpl);
    try {
      load_segment(2, new_ss);
    } catch (const Fault& f) {
      m_cpl = old_cpl;
      fault(10, new_ss & 0xfffc);
    }
    m_gpr[kEsp] = new_esp;
    push(old_ss, size);
    push(old_esp, size);
  }
  push(old_flags, size);
  push(m_seg[1].selector, size);
  push(return_eip, size);
  if (has_error) push(error, size);
  write_descriptor_accessed(cs_sel, cs_desc);
  set_seg_from_desc(1, static_cast<u16>((cs_sel & 0xfffc) | (conforming ? m_cpl : dpl)), cs_desc);
  if (!conforming) m_cpl = static_cast<u8>(dpl);
  m_eip = is32 ? offset : (offset & 0xffff);
  materialize_flags();
  m_eflags &= ~(kTF | kNT | kRF | kVM);
  if (!trap) m_eflags &= ~kIF;
}

void Cpu::deliver_fault(const Fault& f) {
  if (f.vector < 32) ++m_exceptions[f.vector];
  const int first = m_delivering;
  if (first == 8) throw Fault{0xff, false, 0};  // fault while delivering #DF: triple fault
  u8 vector = f.vector;
  bool has_error = f.has_error;
  u32 error = f.error;
  if (first >= 0 && ((contributory(static_cast<u8>(first)) && contributory(vector)) ||
                     (first == 14 && (contributory(vector) || vector == 14)))) {
    vector = 8;
    has_error = true;
    error = 0;
    ++m_exceptions[8];
  }
  m_delivering = vector;
  // Errors are only pushed in protected mode.
  deliver(vector, false, has_error && protected_mode(), error, m_insn_start);
  m_delivering = -1;
}

void Cpu::check_io(u16 port, unsigned size) {
  if (!protected_mode()) return;
  const unsigned iopl = (flags() >> 12) & 3;
  if (m_cpl <= iopl) return;
  // The TSS I/O permission bitmap decides.
  const bool tss32 = (m_tr.attrs & 0xf) == 0x9 || (m_tr.attrs & 0xf) == 0xb;
  if (!tss32 || m_tr.limit < 0x67) fault(13, 0);
  const u32 map = read_sys(m_tr.base + 0x66, 2);
  const u32 at = map + port / 8;
  if (at + 1 > m_tr.limit) fault(13, 0);
  const u32 bits = read_sys(m_tr.base + at, 2);
  if ((bits >> (port & 7)) & ((1u << size) - 1)) fault(13, 0);
}

// ------------------------------------------------------------------ far transfers

void Cpu::far_jump(u16 selector, u32 offset, bool call, unsigned op_size, u32 return_eip) {
  if (!protected_mode()) {
    if (call) {
      push(m_seg[1].selector, op_size);
      push(return_eip, op_size);
    }
    load_segment_real(1, selector);
    m_eip = op_size == 2 ? (offset & 0xffff) : offset;
    return;
  }
  if ((selector & 0xfffc) == 0) fault(13, 0);
  u64 d = read_descriptor(selector);
  const u16 err = selector & 0xfffc;
  if (desc_is_system(d)) {
    // Call gates (same privilege only).
    const unsigned type = desc_type(d);
    if (type != 0x4 && type != 0xc) fault(13, err);
    if (desc_dpl(d) < m_cpl || desc_dpl(d) < (selector & 3)) fault(13, err);
    if (!desc_present(d)) fault(11, err);
    const u16 target = static_cast<u16>(d >> 16);
    const u32 target_off = static_cast<u32>((d & 0xffff) | (type == 0xc ? ((d >> 32) & 0xffff0000u) : 0));
    if ((target & 0xfffc) == 0) fault(13, 0);
    const u64 cd = read_descriptor(target);
    if (!desc_is_code(cd)) fault(13, target & 0xfffc);
    if (desc_dpl(cd) > m_cpl) fault(13, target & 0xfffc);
    if (!(desc_type(cd) & 4) && desc_dpl(cd) < m_cpl)
      fault(13, target & 0xfffc);  // privilege change: not yet
    if (!desc_present(cd)) fault(11, target & 0xfffc);
    const unsigned gate_size = type == 0xc ? 4 : 2;
    if (call) {
      push(m_seg[1].selector, gate_size);
      push(return_eip, gate_size);
    }
    write_descriptor_accessed(target, cd);
    set_seg_from_desc(1, static_cast<u16>((target & 0xfffc) | m_cpl), cd);
    m_eip = gate_size == 2 ? (target_off & 0xffff) : target_off;
    return;
  }
  if (!desc_is_code(d)) fault(13, err);
  const unsigned dpl = desc_dpl(d), rpl = selector & 3;
  if (desc_type(d) & 4) {
    if (dpl > m_cpl) fault(13, err);
  } else if (rpl > m_cpl || dpl != m_cpl) {
    fault(13, err);
  }
  if (!desc_present(d)) fault(11, err);
  const u32 limit = desc_limit(d);
  const u32 target = op_size == 2 ? (offset & 0xffff) : offset;
  if (target > limit) fault(13, 0);
  if (call) {
    push(m_seg[1].selector, op_size);
    push(return_eip, op_size);
  }
  write_descriptor_accessed(selector, d);
  set_seg_from_desc(1, static_cast<u16>((selector & 0xfffc) | m_cpl), d);
  m_eip = target;
}

void Cpu::far_return(unsigned op_size, u16 pop_extra) {
  const u32 eip = pop(op_size);
  const u16 cs = static_cast<u16>(pop(op_size));
  if (!protected_mode()) {
    load_segment_real(1, cs);
    m_eip = eip;
    m_gpr[kEsp] += pop_extra;
    return;
  }
  if ((cs & 0xfffc) == 0) fault(13, 0);
  const u64 d = read_descriptor(cs);
  const unsigned rpl = cs & 3;
  if (!desc_is_code(d) || rpl < m_cpl) fault(13, cs & 0xfffc);
  if ((desc_type(d) & 4) ? desc_dpl(d) > rpl : desc_dpl(d) != rpl) fault(13, cs & 0xfffc);
  if (!desc_present(d)) fault(11, cs & 0xfffc);
  if (stack32()) {
    m_gpr[kEsp] += pop_extra;
  } else {
    m_gpr[kEsp] = (m_gpr[kEsp] & 0xffff0000u) | ((m_gpr[kEsp] + pop_extra) & 0xffff);
  }
  if (rpl > m_cpl) {
    // Return to an outer ring: its stack follows.
    const u32 esp = pop(op_size);
    const u16 ss = static_cast<u16>(pop(op_size));
    m_cpl = static_cast<u8>(rpl);
    load_segment(2, ss);
    m_gpr[kEsp] = esp;
  }
  set_seg_from_desc(1, cs, d);
  m_eip = op_size == 2 ? (eip & 0xffff) : eip;
}

void Cpu::iret(unsigned op_size) {
  if (!protected_mode()) {
    const u32 eip = pop(op_size);
    const u16 cs = static_cast<u16>(pop(op_size));
    const u32 fl = pop(op_size);
    load_segment_real(1, cs);
    m_eip = eip;
    const u32 mask = op_size == 4 ? 0x00257fd5u : 0x7fd5u;
    write_flags(fl, mask);
    return;
  }
  if (flags() & kNT) fault(13, 0);  // nested task return: task switches are not supported
  const u32 eip = pop(op_size);
  const u16 cs = static_cast<u16>(pop(op_size));
  const u32 fl = pop(op_size);
  if ((cs & 0xfffc) == 0) fault(13, 0);
  const u64 d = read_descriptor(cs);
  const unsigned rpl = cs & 3;
  if (!desc_is_code(d) || rpl < m_cpl) fault(13, cs & 0xfffc);
  if ((desc_type(d) & 4) ? desc_dpl(d) > rpl : desc_dpl(d) != rpl) fault(13, cs & 0xfffc);
  if (!desc_present(d)) fault(11, cs & 0xfffc);
  // Which flags may change depends on the privilege before the return.
  u32 mask = kArith | kTF | (1u << 10) | kNT | (1u << 18) | (1u << 21) | kRF;
  const unsigned iopl = (flags() >> 12) & 3;
  if (m_cpl == 0) mask |= 0x3000u;
  if (m_cpl <= iopl) mask |= kIF;
  if (op_size == 2) mask &= 0xffff;
  if (rpl > m_cpl) {
    const u32 esp = pop(op_size);
    const u16 ss = static_cast<u16>(pop(op_size));
    m_cpl = static_cast<u8>(rpl);
    load_segment(2, ss);
    m_gpr[kEsp] = op_size == 2 ? ((m_gpr[kEsp] & 0xffff0000u) | (esp & 0xffff)) : esp;
    // Data segments the outer ring may not use become null.
    for (int s : {0, 3, 4, 5}) {
      const SegmentCache& sc = m_seg[s];
      const bool conforming_code = (sc.attrs & 0x18) == 0x18 && (sc.attrs & 0x4);
      if ((sc.attrs & 0x80) && !conforming_code && ((sc.attrs >> 5) & 3) < m_cpl) {
        m_seg[s] = SegmentCache{0, 0, 0, 0};
      }
    }
  }
  set_seg_from_desc(1, cs, d);
  m_eip = op_size == 2 ? (eip & 0xffff) : eip;
  write_flags(fl, mask);
}

// ------------------------------------------------------------------ loop

void Cpu::note_block(u32 start, u32 end, bool ends_block) {
  if (!m_block_open) {
    m_block_open = true;
    m_block_start = start;
    m_block_bytes.clear();
  }
  // The bytes were just fetched (RAM or ROM), so they translate;
  // debug_translate walks the page tables without touching the TLB or
  // accessed bits, which keeps logging from changing what the guest computes.
  for (u32 a = start; a != end && m_block_bytes.size() < 4096; ++a) {
    u32 phys = 0;
    if (!debug_translate(a, phys)) break;
    m_block_bytes.push_back(static_cast<u8>(read_phys(phys, 1, a)));
  }
  if (!ends_block) return;
  m_block_open = false;
  const auto it = std::lower_bound(m_logged_blocks.begin(), m_logged_blocks.end(), m_block_start);
  if (it != m_logged_blocks.end() && *it == m_block_start) return;
  m_logged_blocks.insert(it, m_block_start);
  m_block_hook(m_block_start, m_block_bytes, (m_seg[1].attrs & 0x4000) != 0);
}

}  // namespace reel
