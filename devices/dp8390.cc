#include "devices/dp8390.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "devices/byte_lanes.h"

namespace reel {

namespace {
// CR
constexpr u8 kCrStp = 0x01, kCrSta = 0x02, kCrTxp = 0x04;
constexpr u8 kCrRdMask = 0x38, kCrRdRead = 0x08, kCrRdWrite = 0x10, kCrRdSend = 0x18, kCrRdAbort = 0x20;
// ISR / IMR
constexpr u8 kIsrPrx = 0x01, kIsrPtx = 0x02, kIsrTxe = 0x08, kIsrOvw = 0x10, kIsrCnt = 0x20, kIsrRdc = 0x40,
             kIsrRst = 0x80;
// RCR
constexpr u8 kRcrAb = 0x04, kRcrAm = 0x08, kRcrPro = 0x10, kRcrMon = 0x20;
// RSR
constexpr u8 kRsrPrx = 0x01, kRsrMpa = 0x10, kRsrPhy = 0x20, kRsrDis = 0x40;
// TSR
constexpr u8 kTsrPtx = 0x01, kTsrAbt = 0x08;
// DCR
constexpr u8 kDcrBos = 0x02;
// RTL8029AS 9346CR operating modes (bits 7-6).
constexpr u8 kEemAutoload = 0x40, kEemConfigWrite = 0xc0;
// What the RTL8029AS's EEPROM leaves in CONFIG2/3 on QEMU's card:
// 10BaseT selected, full duplex.
constexpr u8 kConfig2Default = 0x40, kConfig3Default = 0x40;
// The DP8390's tally counters stop at 192.
constexpr u8 kTallyMax = 0xc0;
constexpr u32 kPageSize = 256;

u32 all_ones(unsigned size) { return size >= 4 ? 0xffffffffu : (u32{1} << (8 * size)) - 1; }
}  // namespace

Dp8390::Dp8390(std::string name, std::string model, const MacAddress& mac)
    : Device(std::move(name)), m_mac(mac), m_model(std::move(model)), m_ram(kRamSize, 0) {
  // No virtual calls from here: the pin starts low and the front-end's
  // drive_irq() is not reachable yet.
  power_on();
}

void Dp8390::power_on() {
  std::fill(m_ram.begin(), m_ram.end(), u8{0});
  // The station-address PROM as NE2000 boards wire it to a 16-bit bus:
  // every byte appears twice, and the 0x57 ('W') signature that
  // drivers check sits at word 14-15.
  m_prom.fill(0);
  for (size_t i = 0; i < m_mac.size(); ++i) {
    m_prom[2 * i] = m_mac[i];
    m_prom[2 * i + 1] = m_mac[i];
  }
  for (size_t i = 28; i < 32; ++i) m_prom[i] = 0x57;

  m_dcr = m_tcr = m_rcr = m_rsr = m_tsr = 0;
  m_pstart = m_pstop = m_bnry = m_curr = m_tpsr = 0;
  m_tbcr = m_rsar = m_rbcr = m_clda = 0;
  m_rnpp = m_lnpp = 0;
  m_address_counter = 0;
  // The RTL8029AS loads its node address at power-up; drivers overwrite it.
  m_par = m_mac;
  m_mar.fill(0);
  m_tally.fill(0);
  m_cr9346 = 0;
  m_config2 = kConfig2Default;
  m_config3 = kConfig3Default;
  m_hltclk = 0;
  board_reset();
}

void Dp8390::board_reset() {
  // What the RESET line does: stopped, remote DMA aborted, page 0,
  // interrupts masked, ISR.RST set. Ring and address registers keep their
  // values, as on the chip.
  m_cr = kCrRdAbort | kCrStp;
  m_isr = kIsrRst;
  m_imr = 0;
  m_dma = Dma::idle;
  m_dma_remaining = 0;
}

void Dp8390::reset() {
  power_on();
  update_irq();
}

void Dp8390::update_irq() {
  const bool level = interrupt_pending() && irq_gate();
  if (level == m_irq_level) return;
  m_irq_level = level;
  drive_irq(level);
}

std::string Dp8390::describe_port() const {
  char mac[18];
  std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m_mac[0], m_mac[1], m_mac[2], m_mac[3],
                m_mac[4], m_mac[5]);
  return "model=" + m_model + ",macaddr=" + mac;
}

// ---------------------------------------------------------------------------
// Port I/O

u32 Dp8390::read(u32 offset, unsigned size) {
  if (offset >= 0x10 && offset < 0x18) return data_read(size) & all_ones(size);
  if (offset < kIoSize) {
    return read_byte_lanes(offset, size, [this](u32 o) { return read_port_byte(o); });
  }
  return all_ones(size);  // the rest of a PCI BAR decodes nothing
}

void Dp8390::write(u32 offset, unsigned size, u32 value) {
  if (offset >= 0x10 && offset < 0x18) {
    data_write(size, value);
    return;
  }
  if (offset < kIoSize) {
    write_byte_lanes(offset, size, value, [this](u32 o, u8 v) { write_port_byte(o, v); });
  }
}

u8 Dp8390::read_port_byte(u32 offset) {
  if (offset < 0x10) return read_register(static_cast<u8>(offset));
  if (offset < 0x18) return static_cast<u8>(data_read(1));
  if (offset < kIoSize) {
    board_reset();
    update_irq();
    return 0;
  }
  return 0xff;
}

void Dp8390::write_port_byte(u32 offset, u8 value) {
  if (offset < 0x10) {
    write_register(static_cast<u8>(offset), value);
  } else if (offset < 0x18) {
    data_write(1, value);
  } else if (offset < kIoSize) {
    board_reset();
    update_irq();
  }
}

u8 Dp8390::read_register(u8 reg) {
  if (reg == 0) return m_cr;
  switch (m_cr >> 6) {
    case 0:
      switch (reg) {
        case 0x01:
          return static_cast<u8>(m_clda);
        case 0x02:
          return static_cast<u8>(m_clda >> 8);
        case 0x03:
          return m_bnry;
        case 0x04:
          return m_tsr;
        case 0x05:
          return 0;  // NCR: the wire never collides
        case 0x06:
          return 0;  // FIFO: nothing lingers after a loopback
        case 0x07:
          return m_isr;
        case 0x08:
          return static_cast<u8>(m_crda);
        case 0x09:
          return static_cast<u8>(m_crda >> 8);
        case 0x0a:
          return 0x50;  // RTL8029 ID: 'P'
        case 0x0b:
          return 0x43;  //            'C'
        case 0x0c:
          return m_rsr;
        default: {
          // CNTR0-2 clear when read.
          const u8 v = m_tally[reg - 0x0d];
          m_tally[reg - 0x0d] = 0;
          return v;
        }
      }
    case 1:
      if (reg <= 0x06) return m_par[reg - 1];
      if (reg == 0x07) return m_curr;
      return m_mar[reg - 0x08];
    case 2:
      // Unused bits read as ones on the RTL8029AS.
      switch (reg) {
        case 0x01:
          return m_pstart;
        case 0x02:
          return m_pstop;
        case 0x03:
          return m_rnpp;
        case 0x04:
          return m_tpsr;
        case 0x05:
          return m_lnpp;
        case 0x06:
          return static_cast<u8>(m_address_counter >> 8);
        case 0x07:
          return static_cast<u8>(m_address_counter);
        case 0x0c:
          return m_rcr | 0xc0;
        case 0x0d:
          return m_tcr | 0xe0;
        case 0x0e:
          return m_dcr | 0x80;
        case 0x0f:
          return m_imr;
        default:
          return 0;  // reserved
      }
    default:
      return read_page3(reg);
  }
}

void Dp8390::write_register(u8 reg, u8 value) {
  if (reg == 0) {
    write_command(value);
    return;
  }
  switch (m_cr >> 6) {
    case 0:
      switch (reg) {
        case 0x01:
          m_pstart = value;
          break;
        case 0x02:
          m_pstop = value;
          break;
        case 0x03:
          m_bnry = value;
          // The host freed ring pages: an overflow's RST indication ends.
          if (started()) m_isr &= static_cast<u8>(~kIsrRst);
          break;
        case 0x04:
          m_tpsr = value;
          break;
        case 0x05:
          m_tbcr = static_cast<u16>((m_tbcr & 0xff00) | value);
          break;
        case 0x06:
          m_tbcr = static_cast<u16>((m_tbcr & 0x00ff) | value << 8);
          break;
        case 0x07:
          // Write one to clear; RST only follows the chip's state.
          m_isr &= static_cast<u8>(~(value & 0x7f));
          update_irq();
          break;
        case 0x08:
          m_rsar = static_cast<u16>((m_rsar & 0xff00) | value);
          break;
        case 0x09:
          m_rsar = static_cast<u16>((m_rsar & 0x00ff) | value << 8);
          break;
        case 0x0a:
          m_rbcr = static_cast<u16>((m_rbcr & 0xff00) | value);
          break;
        case 0x0b:
          m_rbcr = static_cast<u16>((m_rbcr & 0x00ff) | value << 8);
          break;
        case 0x0c:
          m_rcr = value & 0x3f;
          break;
        case 0x0d:
          m_tcr = value & 0x1f;
          break;
        case 0x0e:
          m_dcr = value & 0x7f;
          break;
        case 0x0f:
          m_imr = value & 0x7f;
          update_irq();
          break;
      }
      break;
    case 1:
      if (reg <= 0x06) {
        m_par[reg - 1] = value;
      } else if (reg == 0x07) {
        m_curr = value;
      } else {
        m_mar[reg - 0x08] = value;
      }
      break;
    case 2:
      // Diagnostic registers; the datasheet asks drivers not to write them
      // in normal operation, so they only read back.
      switch (reg) {
        case 0x01:
          m_clda = static_cast<u16>((m_clda & 0xff00) | value);
          break;
        case 0x02:
          m_clda = static_cast<u16>((m_clda & 0x00ff) | value << 8);
          break;
        case 0x03:
          m_rnpp = value;
          break;
        case 0x05:
          m_lnpp = value;
          break;
        case 0x06:
          m_address_counter = static_cast<u16>((m_address_counter & 0x00ff) | value << 8);
          break;
        case 0x07:
          m_address_counter = static_cast<u16>((m_address_counter & 0xff00) | value);
          break;
        default:
          break;
      }
      break;
    default:
      write_page3(reg, value);
      break;
  }
}

void Dp8390::write_command(u8 value) {
  // STA/STP latch the chip's state; a write with neither (a page switch
  // written as 0x40, say) leaves it running or stopped as it was.
  u8 run = m_cr & (kCrSta | kCrStp);
  if (value & kCrStp) {
    run = kCrStp;
    m_isr |= kIsrRst;  // entering the reset state
  } else if (value & kCrSta) {
    run = kCrSta;
    m_isr &= static_cast<u8>(~kIsrRst);
  }
  const u8 rd = value & kCrRdMask;
  m_cr = static_cast<u8>((value & 0xf8) | run);

  if (rd & kCrRdAbort) {
    m_dma = Dma::idle;
  } else if (rd == kCrRdRead || rd == kCrRdWrite) {
    m_crda = m_rsar;
    m_dma_remaining = m_rbcr;
    m_dma = rd == kCrRdRead ? Dma::read : Dma::write;
    if (m_dma_remaining == 0) {
      // Nothing to move: complete at once (Linux's ne.c probes the IRQ
      // line with exactly this).
      m_dma = Dma::idle;
      m_isr |= kIsrRdc;
    }
  } else if (rd == kCrRdSend) {
    // "Send packet" walks the ring from BNRY by itself. The RTL8029AS
    // dropped it and no NE2000 driver we know issues it: treated as abort.
    ++m_counters.unsupported_commands;
    m_dma = Dma::idle;
  }
  // RD = 000 is "not allowed": it leaves the remote DMA alone.

  if (value & kCrTxp) {
    if (started()) {
      start_transmit();
    } else {
      ++m_counters.tx_stopped;
    }
    m_cr &= static_cast<u8>(~kCrTxp);
  }
  update_irq();
}

u8 Dp8390::read_page3(u8 reg) const {
  switch (reg) {
    case 0x01:
      return m_cr9346 & 0xfe;  // EEDO: no EEPROM answers
    case 0x03:
      return 0x00;  // CONFIG0: twisted pair, no BNC
    case 0x05:
      return m_config2;
    case 0x06:
      return m_config3;
    case 0x0e:
      return 0x29;  // 8029ASID: 0x8029
    case 0x0f:
      return 0x80;
    default:
      return 0x00;
  }
}

void Dp8390::write_page3(u8 reg, u8 value) {
  switch (reg) {
    case 0x01:
      if ((value & 0xc0) == kEemAutoload) {
        // Auto-load from the 9346 finishes at once and returns to normal mode.
        m_config2 = kConfig2Default;
        m_config3 = kConfig3Default;
        m_cr9346 = 0;
      } else {
        m_cr9346 = value & 0xce;
      }
      break;
    case 0x05:
      if ((m_cr9346 & 0xc0) == kEemConfigWrite)
        m_config2 = static_cast<u8>((m_config2 & 0x1f) | (value & 0xe0));
      break;
    case 0x06:
      if ((m_cr9346 & 0xc0) == kEemConfigWrite)
        m_config3 = static_cast<u8>((m_config3 & 0xb9) | (value & 0x46));
      break;
    case 0x09:
      if (m_config3 & 0x02) m_hltclk = value;  // only in power-down mode
      break;
    default:
      break;
  }
}

u8 Dp8390::peek(u16 address) const {
  if (address < kPromSize) return m_prom[address];
  if (address >= kRamStart && address < kRamEnd) return m_ram[address - kRamStart];
  return 0xff;
}

unsigned Dp8390::multicast_index(std::span<const u8, 6> address) {
  u32 crc = 0xffffffffu;
  for (u8 byte : address) {
    for (unsigned bit = 0; bit < 8; ++bit) {
      const u32 top = crc >> 31;
      crc <<= 1;
      if (top ^ ((byte >> bit) & 1u)) crc ^= 0x04c11db7u;
    }
  }
  return crc >> 26;
}

// ---------------------------------------------------------------------------
// Remote DMA

u8 Dp8390::mem_read(u32 address) {
  if (address < kPromSize) return m_prom[address];
  if (address >= kRamStart && address < kRamEnd) return m_ram[address - kRamStart];
  ++m_counters.dma_out_of_range;
  return 0xff;
}

void Dp8390::mem_write(u32 address, u8 value) {
  if (address >= kRamStart && address < kRamEnd) {
    m_ram[address - kRamStart] = value;
    return;
  }
  ++m_counters.dma_out_of_range;  // the PROM is a ROM; elsewhere is nothing
}

void Dp8390::dma_advance(unsigned bytes) {
  m_crda = static_cast<u16>(m_crda + bytes);
  // The remote DMA follows the receive ring: reaching PSTOP wraps to PSTART.
  if (m_crda == static_cast<u16>(m_pstop << 8)) m_crda = static_cast<u16>(m_pstart << 8);
  if (m_dma_remaining <= bytes) {
    m_dma_remaining = 0;
    m_dma = Dma::idle;
    m_isr |= kIsrRdc;
    update_irq();
  } else {
    m_dma_remaining = static_cast<u16>(m_dma_remaining - bytes);
  }
}

u16 Dp8390::dma_read_unit() {
  if (m_dma != Dma::read) {
    ++m_counters.dma_idle;
    return 0xffff;
  }
  if (!word_mode()) {
    const u8 b = mem_read(m_crda);
    dma_advance(1);
    return b;
  }
  // In word mode address bit 0 is not used.
  m_crda &= 0xfffe;
  const u8 lo = mem_read(m_crda);
  const u8 hi = mem_read(m_crda + 1u);
  dma_advance(2);
  return (m_dcr & kDcrBos) ? static_cast<u16>(hi | lo << 8) : static_cast<u16>(lo | hi << 8);
}

void Dp8390::dma_write_unit(u16 value) {
  if (m_dma != Dma::write) {
    ++m_counters.dma_idle;
    return;
  }
  if (!word_mode()) {
    mem_write(m_crda, static_cast<u8>(value));
    dma_advance(1);
    return;
  }
  m_crda &= 0xfffe;
  const u8 first = (m_dcr & kDcrBos) ? static_cast<u8>(value >> 8) : static_cast<u8>(value);
  const u8 second = (m_dcr & kDcrBos) ? static_cast<u8>(value) : static_cast<u8>(value >> 8);
  mem_write(m_crda, first);
  mem_write(m_crda + 1u, second);
  dma_advance(2);
}

// An access moves as many bytes as it is wide, in the unit DCR.WTS selects;
// a byte access in word mode still moves a whole word (the bus takes the
// low lane), as on 16-bit NE2000 boards.
u32 Dp8390::data_read(unsigned size) {
  if (word_mode()) {
    const u32 lo = dma_read_unit();
    if (size < 4) return lo;
    return lo | u32{dma_read_unit()} << 16;
  }
  u32 v = 0;
  for (unsigned i = 0; i < size && i < 4; ++i) v |= u32{static_cast<u8>(dma_read_unit())} << (8 * i);
  return v;
}

void Dp8390::data_write(unsigned size, u32 value) {
  if (word_mode()) {
    dma_write_unit(static_cast<u16>(size == 1 ? (value & 0xff) : (value & 0xffff)));
    if (size >= 4) dma_write_unit(static_cast<u16>(value >> 16));
    return;
  }
  for (unsigned i = 0; i < size && i < 4; ++i) dma_write_unit(static_cast<u8>(value >> (8 * i)));
}

// ---------------------------------------------------------------------------
// Transmit

void Dp8390::start_transmit() {
  const u32 start = u32{m_tpsr} << 8;
  const u32 len = m_tbcr;
  if (len > kMaxFrame) {
    ++m_counters.tx_oversize;
    m_tsr = kTsrAbt;
    m_isr |= kIsrTxe;
    return;
  }
  if (start < kRamStart || start + len > kRamEnd) {
    ++m_counters.tx_out_of_range;
    m_tsr = kTsrAbt;
    m_isr |= kIsrTxe;
    return;
  }
  // Copied out first: a frame looped back or answered synchronously may
  // land in the ring, which a careless guest may have put over this buffer.
  m_tx_scratch.assign(m_ram.begin() + (start - kRamStart), m_ram.begin() + (start - kRamStart + len));
  m_clda = static_cast<u16>(start + len);
  // A zero byte count completes without anything reaching the wire.
  if (len > 0) {
    ++m_counters.tx_frames;
    if (loopback()) {
      accept_frame(m_tx_scratch);
    } else {
      transmit(m_tx_scratch);
    }
  }
  m_tsr = kTsrPtx;
  m_isr |= kIsrPtx;
}

// ---------------------------------------------------------------------------
// Receive

void Dp8390::receive_frame(std::span<const u8> frame) {
  if (!started() || loopback()) {
    ++m_counters.rx_stopped;
    return;
  }
  accept_frame(frame);
}

bool Dp8390::address_accepted(std::span<const u8> frame) const {
  const u8* dst = frame.data();
  if (!(dst[0] & 0x01)) {
    // Physical address: PAR0-5 (QEMU compares the PROM instead), or any
    // with PRO.
    return (m_rcr & kRcrPro) || std::equal(m_par.begin(), m_par.end(), dst);
  }
  static constexpr u8 kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  if (std::equal(std::begin(kBroadcast), std::end(kBroadcast), dst)) return m_rcr & kRcrAb;
  if (!(m_rcr & kRcrAm)) return false;
  const unsigned index = multicast_index(frame.first<6>());
  return m_mar[index >> 3] & (1u << (index & 7));
}

bool Dp8390::ring_valid() const {
  return m_pstart >= kRamFirstPage && m_pstop <= kRamEndPage && m_pstart < m_pstop && m_curr >= m_pstart &&
         m_curr < m_pstop;
}

void Dp8390::bump_tally(unsigned index) {
  if (m_tally[index] < kTallyMax) ++m_tally[index];
  if (m_tally[index] & 0x80) m_isr |= kIsrCnt;
}

void Dp8390::count_missed(bool group) {
  m_rsr = static_cast<u8>(kRsrMpa | (group ? kRsrPhy : 0) | ((m_rcr & kRcrMon) ? kRsrDis : 0));
  bump_tally(2);
}

void Dp8390::accept_frame(std::span<const u8> frame) {
  if (frame.size() < kEthMinFrame) {
    ++m_counters.rx_runt;
    return;
  }
  if (frame.size() > kMaxFrame) {
    ++m_counters.rx_oversize;
    return;
  }
  if (!address_accepted(frame)) {
    ++m_counters.rx_filtered;
    return;
  }
  const bool group = frame[0] & 0x01;
  if (m_rcr & kRcrMon) {
    // Monitor mode checks and counts packets but stores none.
    ++m_counters.rx_monitor;
    count_missed(group);
    update_irq();
    return;
  }
  if (!ring_valid()) {
    ++m_counters.rx_bad_ring;
    count_missed(group);
    update_irq();
    return;
  }
  const size_t stored = std::max(frame.size(), kMinStoredFrame);
  // Pages as the chip uses them: the 4-byte header, the frame and its
  // 4-byte FCS (which, like QEMU, we do not store).
  const unsigned pages = static_cast<unsigned>((4 + stored + 4 + kPageSize - 1) / kPageSize);
  const unsigned ring_pages = m_pstop - m_pstart;
  // Linux's 8390 driver keeps BNRY one page behind the next frame to read,
  // and so writes PSTART-1 when that frame starts at PSTART: in ring terms
  // that is PSTOP-1.
  unsigned bnry = m_bnry;
  if (bnry + 1 == m_pstart) bnry = m_pstop - 1u;
  // Free pages from CURR up to, not including, BNRY. CURR == BNRY is an
  // empty ring (the datasheet's convention; Linux keeps BNRY one behind).
  // The chip stops only on reaching a page equal to BNRY, so any other
  // BNRY outside the ring never stops it: the whole ring is free.
  const bool bnry_in_ring = bnry >= m_pstart && bnry < m_pstop;
  const unsigned avail = !bnry_in_ring   ? ring_pages
                         : bnry > m_curr ? bnry - m_curr
                                         : ring_pages - (m_curr - bnry);
  // Strictly less: CURR must never catch up with BNRY, or a full ring
  // would look empty.
  if (pages >= avail) {
    ++m_counters.rx_overflow;
    m_isr |= kIsrOvw | kIsrRst;
    count_missed(group);
    update_irq();
    return;
  }
  store_frame(frame, stored, pages, group);
}

void Dp8390::store_frame(std::span<const u8> frame, size_t stored_len, unsigned pages, bool group) {
  const u32 ring_start = u32{m_pstart} << 8;
  const u32 ring_stop = u32{m_pstop} << 8;
  u32 next = m_curr + pages;
  if (next >= m_pstop) next -= m_pstop - m_pstart;
  const u8 status = static_cast<u8>(kRsrPrx | (group ? kRsrPhy : 0));
  const u32 count = static_cast<u32>(stored_len + 4);

  u32 addr = u32{m_curr} << 8;
  // The header starts a page, so it never wraps.
  u8* hdr = &m_ram[addr - kRamStart];
  hdr[0] = status;
  hdr[1] = static_cast<u8>(next);
  hdr[2] = static_cast<u8>(count);
  hdr[3] = static_cast<u8>(count >> 8);
  addr += 4;

  // Frame bytes then zero padding, in runs up to the ring's end.
  size_t done = 0;
  while (done < stored_len) {
    const size_t run = std::min<size_t>(stored_len - done, ring_stop - addr);
    u8* dst = &m_ram[addr - kRamStart];
    const size_t copy = done < frame.size() ? std::min(run, frame.size() - done) : 0;
    if (copy) std::memcpy(dst, frame.data() + done, copy);
    if (copy < run) std::memset(dst + copy, 0, run - copy);
    done += run;
    addr += static_cast<u32>(run);
    if (addr == ring_stop) addr = ring_start;
  }

  m_clda = static_cast<u16>(addr);
  m_curr = static_cast<u8>(next);
  m_lnpp = m_curr;
  m_rsr = status;
  m_isr |= kIsrPrx;
  ++m_counters.rx_frames;
  update_irq();
}

// ---------------------------------------------------------------------------
// State

namespace {
// Buffer RAM in dumps: one base64 field per 256-byte page ("page_4c"), so
// a diff names the page that differs.
struct RamPages {
  std::vector<u8>& ram;
  template <class Archive>
  void serialize(Archive& ar) {
    static const auto names = [] {
      std::array<std::string, Dp8390::kRamSize / 256> n;
      for (size_t i = 0; i < n.size(); ++i) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "page_%02zx", i + Dp8390::kRamFirstPage);
        n[i] = buf;
      }
      return n;
    }();
    for (size_t i = 0; i < names.size(); ++i) {
      if constexpr (std::is_same_v<Archive, JsonOut>) {
        ar.saveBinaryValue(&ram[i * 256], 256, names[i].c_str());  // base64
      } else {
        ar(cereal::make_nvp(names[i].c_str(), cereal::binary_data(&ram[i * 256], 256)));
      }
    }
  }
};
}  // namespace

template <class Archive>
void Dp8390::serialize(Archive& ar) {
  u8 dma = static_cast<u8>(m_dma);
  ar(REEL_FIELD(m_cr), REEL_FIELD(m_isr), REEL_FIELD(m_imr), REEL_FIELD(m_dcr), REEL_FIELD(m_tcr),
     REEL_FIELD(m_rcr), REEL_FIELD(m_rsr), REEL_FIELD(m_tsr), REEL_FIELD(m_pstart), REEL_FIELD(m_pstop),
     REEL_FIELD(m_bnry), REEL_FIELD(m_curr), REEL_FIELD(m_tpsr), REEL_FIELD(m_tbcr), REEL_FIELD(m_rsar),
     REEL_FIELD(m_rbcr), REEL_FIELD(m_clda), REEL_FIELD(m_rnpp), REEL_FIELD(m_lnpp),
     REEL_FIELD(m_address_counter), REEL_FIELD(m_par), REEL_FIELD(m_mar), REEL_FIELD(m_tally),
     cereal::make_nvp("dma", dma), REEL_FIELD(m_crda), REEL_FIELD(m_dma_remaining), REEL_FIELD(m_cr9346),
     REEL_FIELD(m_config2), REEL_FIELD(m_config3), REEL_FIELD(m_hltclk), REEL_FIELD(m_irq_level),
     REEL_FIELD(m_prom), cereal::make_nvp("ram", RamPages{m_ram}), REEL_FIELD(m_counters));
  if constexpr (Archive::is_loading::value) m_dma = dma <= 2 ? static_cast<Dma>(dma) : Dma::idle;
}

template void Dp8390::serialize<BinaryOut>(BinaryOut&);
template void Dp8390::serialize<BinaryIn>(BinaryIn&);
template void Dp8390::serialize<JsonOut>(JsonOut&);

}  // namespace reel
