#include "devices/uart.h"

#include "core/port_bus.h"
#include "devices/byte_lanes.h"

namespace reel {

namespace {
constexpr u8 kLsrDr = 0x01, kLsrOe = 0x02, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr u8 kIerRda = 0x01, kIerThre = 0x02, kIerRls = 0x04, kIerMs = 0x08;
constexpr u8 kMcrOut2 = 0x08, kMcrLoop = 0x10;
constexpr u64 kBaseBaud = 115200;
}  // namespace

Uart::Uart(std::string name, Scheduler& scheduler, const VirtualClock& clock, HostIO& host, ChannelId channel,
           IrqLine irq)
    : Device(std::move(name)),
      m_scheduler(scheduler),
      m_clock(clock),
      m_host(host),
      m_channel(channel),
      m_irq(irq) {
  m_rx_timer = m_scheduler.add_timer(this->name() + ".rx", [this] { feed_from_host(); });
  m_timeout_timer = m_scheduler.add_timer(this->name() + ".timeout", [this] {
    if (!m_rx_fifo.empty()) m_timeout_pending = true;
    update_irq();
  });
  reset();
}

void Uart::map_into(PortBus& ports, u16 base) { ports.map(base, 8, this, 0); }

void Uart::reset() {
  m_rx_fifo.clear();
  m_ier = m_lcr = m_mcr = m_scr = m_fcr = 0;
  m_dll = 0x0c;  // 9600 baud, what a BIOS leaves is not ours to assume
  m_dlm = 0;
  m_lsr = kLsrThre | kLsrTemt;
  // Nothing drives the modem lines of a host console: report a present
  // peer (CTS, DSR, DCD) so drivers that wait for carrier proceed.
  m_msr = 0xb0;
  m_thre_pending = false;
  m_timeout_pending = false;
  m_scheduler.cancel(m_timeout_timer);
  if (host_pending()) m_scheduler.arm(m_rx_timer, m_clock.now_ns() + char_time_ns());
  update_irq();
}

size_t Uart::trigger_level() const {
  static constexpr size_t kLevels[4] = {1, 4, 8, 14};
  return fifo_enabled() ? kLevels[m_fcr >> 6] : 1;
}

u64 Uart::char_time_ns() const {
  u32 divisor = u32{m_dll} | u32{m_dlm} << 8;
  if (divisor == 0) divisor = 1;
  // Start, 5-8 data, optional parity and 1-2 stop bits.
  const u64 bits = 1 + 5 + (m_lcr & 3) + ((m_lcr & 0x08) ? 1 : 0) + ((m_lcr & 0x04) ? 2 : 1);
  return bits * divisor * 1000000000ull / kBaseBaud;
}

u8 Uart::iir() const {
  u8 fifo_bits = fifo_enabled() ? 0xc0 : 0;
  if ((m_ier & kIerRls) && (m_lsr & 0x1e)) return fifo_bits | 0x06;
  if ((m_ier & kIerRda) && m_rx_fifo.size() >= trigger_level()) return fifo_bits | 0x04;
  if ((m_ier & kIerRda) && m_timeout_pending && !m_rx_fifo.empty()) return fifo_bits | 0x0c;
  if ((m_ier & kIerThre) && m_thre_pending) return fifo_bits | 0x02;
  if ((m_ier & kIerMs) && (m_msr & 0x0f)) return fifo_bits | 0x00;
  return fifo_bits | 0x01;
}

void Uart::update_irq() {
  const bool pending = !(iir() & 0x01);
  const bool level = pending && (m_mcr & kMcrOut2) && !(m_mcr & kMcrLoop);
  if (level != m_irq_level) {
    m_irq_level = level;
    m_irq.set(level);
  }
}

void Uart::arm_timeout() {
  m_scheduler.cancel(m_timeout_timer);
  m_timeout_pending = false;
  if (fifo_enabled() && !m_rx_fifo.empty()) {
    m_scheduler.arm(m_timeout_timer, m_clock.now_ns() + 4 * char_time_ns());
  }
}

void Uart::push_rx(u8 byte) {
  if (m_rx_fifo.size() >= rx_capacity()) {
    // Only loopback can overrun: host input waits instead. Without FIFOs
    // the new character replaces the unread one; with them it is lost in
    // the shift register.
    m_lsr |= kLsrOe;
    ++m_overruns;
    if (!fifo_enabled() && !m_rx_fifo.empty()) m_rx_fifo.back() = byte;
  } else {
    m_rx_fifo.push_back(byte);
  }
  m_lsr |= kLsrDr;
  arm_timeout();
  update_irq();
}

void Uart::feed_from_host() {
  if (!host_pending()) return;
  if (m_rx_fifo.size() < rx_capacity() && !(m_mcr & kMcrLoop)) {
    push_rx(m_host_queue[m_host_head++]);
    // Compact now and then so a long paste stays linear, not quadratic.
    if (m_host_head == m_host_queue.size()) {
      m_host_queue.clear();
      m_host_head = 0;
    } else if (m_host_head >= 4096 && m_host_head * 2 >= m_host_queue.size()) {
      m_host_queue.erase(m_host_queue.begin(),
                         m_host_queue.begin() + static_cast<std::ptrdiff_t>(m_host_head));
      m_host_head = 0;
    }
  }
  // One character per character time; a full FIFO holds the line.
  if (host_pending()) m_scheduler.arm(m_rx_timer, m_clock.now_ns() + char_time_ns());
}

void Uart::receive(std::span<const u8> bytes) {
  for (u8 b : bytes) {
    if (m_host_queue.size() - m_host_head >= kHostQueueLimit) {
      ++m_dropped_input;
      continue;
    }
    m_host_queue.push_back(b);
  }
  if (host_pending() && !m_scheduler.armed(m_rx_timer)) {
    m_scheduler.arm(m_rx_timer, m_clock.now_ns() + char_time_ns());
  }
}

void Uart::transmit(u8 byte) {
  // Writing THR clears a pending THRE interrupt; let the line fall before
  // the byte leaves so the edge-triggered PIC sees a fresh rising edge when
  // the register empties again (as the 16550A's IRQ pin does).
  m_thre_pending = false;
  m_lsr &= static_cast<u8>(~(kLsrThre | kLsrTemt));
  update_irq();
  if (m_mcr & kMcrLoop) {
    push_rx(byte);
  } else {
    m_host.console_write(m_channel, std::span<const u8>(&byte, 1));
  }
  // The byte leaves at once: the holding register is empty again.
  m_lsr |= kLsrThre | kLsrTemt;
  m_thre_pending = true;
}

void Uart::update_msr(u8 old_mcr) {
  if (!(m_mcr & kMcrLoop)) {
    if (old_mcr & kMcrLoop) m_msr = (m_msr & 0x0f) | 0xb0;
    return;
  }
  // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
  const u8 m = m_mcr;
  const u8 lines = static_cast<u8>(((m & 0x02) ? 0x10 : 0) | ((m & 0x01) ? 0x20 : 0) |
                                   ((m & 0x04) ? 0x40 : 0) | ((m & 0x08) ? 0x80 : 0));
  const u8 old = m_msr & 0xf0;
  u8 delta = m_msr & 0x0f;
  if ((old ^ lines) & 0x10) delta |= 0x01;
  if ((old ^ lines) & 0x20) delta |= 0x02;
  if ((old & 0x40) && !(lines & 0x40)) delta |= 0x04;  // trailing edge of RI
  if ((old ^ lines) & 0x80) delta |= 0x08;
  m_msr = lines | delta;
}

u8 Uart::read_byte(u32 offset) {
  const bool dlab = m_lcr & 0x80;
  u8 v = 0xff;
  switch (offset & 7) {
    case 0:
      if (dlab) {
        v = m_dll;
        break;
      }
      v = 0;
      if (!m_rx_fifo.empty()) {
        v = m_rx_fifo.front();
        m_rx_fifo.erase(m_rx_fifo.begin());
      }
      if (m_rx_fifo.empty()) m_lsr &= static_cast<u8>(~kLsrDr);
      arm_timeout();
      if (host_pending() && !m_scheduler.armed(m_rx_timer)) {
        m_scheduler.arm(m_rx_timer, m_clock.now_ns() + char_time_ns());
      }
      break;
    case 1:
      v = dlab ? m_dlm : m_ier;
      break;
    case 2:
      v = iir();
      // Reading IIR while it reports THRE clears that source.
      if ((v & 0x0f) == 0x02) m_thre_pending = false;
      break;
    case 3:
      v = m_lcr;
      break;
    case 4:
      v = m_mcr;
      break;
    case 5:
      v = m_lsr;
      m_lsr &= static_cast<u8>(~0x1e);  // OE, PE, FE and BI clear on read
      break;
    case 6:
      v = m_msr;
      m_msr &= 0xf0;
      break;
    case 7:
      v = m_scr;
      break;
  }
  update_irq();
  return v;
}

void Uart::write_byte(u32 offset, u8 v) {
  const bool dlab = m_lcr & 0x80;
  switch (offset & 7) {
    case 0:
      if (dlab) {
        m_dll = v;
      } else {
        transmit(v);
      }
      break;
    case 1:
      if (dlab) {
        m_dlm = v;
      } else {
        const u8 old = m_ier;
        m_ier = v & 0x0f;
        // Enabling THRE interrupts with an empty holding register raises
        // one at once, as the 16550A does.
        if (!(old & kIerThre) && (m_ier & kIerThre) && (m_lsr & kLsrThre)) m_thre_pending = true;
      }
      break;
    case 2: {
      const bool was_enabled = fifo_enabled();
      m_fcr = v & 0xc9;
      if (was_enabled != fifo_enabled() || (v & 0x02)) {
        m_rx_fifo.clear();
        m_lsr &= static_cast<u8>(~kLsrDr);
        m_timeout_pending = false;
      }
      break;
    }
    case 3:
      m_lcr = v;
      break;
    case 4: {
      const u8 old = m_mcr;
      m_mcr = v & 0x1f;
      update_msr(old);
      break;
    }
    case 5:
      break;  // LSR is read-only
    case 6:
      break;
    case 7:
      m_scr = v;
      break;
  }
  update_irq();
}

u32 Uart::read(u32 offset, unsigned size) {
  return read_byte_lanes(offset, size, [this](u32 o) { return read_byte(o); });
}

void Uart::write(u32 offset, unsigned size, u32 value) {
  write_byte_lanes(offset, size, value, [this](u32 o, u8 v) { write_byte(o, v); });
}

}  // namespace reel
