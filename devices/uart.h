#pragma once

#include <span>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/host_io.h"
#include "core/interrupts.h"
#include "core/scheduler.h"
#include "core/virtual_clock.h"

namespace reel {

class PortBus;

// A 16550A UART. Transmitted bytes leave at once through HostIO (or loop
// back in loopback mode). Host input waits in a device-side queue and
// enters the receive FIFO at the line's character rate, held back while
// the FIFO is full, the way a terminal with flow control feeds a real
// port; so a guest that reads slowly never loses typed input. The IRQ pin
// is gated by MCR OUT2, as on every PC.
class Uart : public Device {
 public:
  Uart(std::string name, Scheduler& scheduler, const VirtualClock& clock, HostIO& host, ChannelId channel,
       IrqLine irq);

  void map_into(PortBus& ports, u16 base);

  void reset() override;
  u32 read(u32 offset, unsigned size) override;
  void write(u32 offset, unsigned size, u32 value) override;

  // Host input for this port (from the journal in replay).
  void receive(std::span<const u8> bytes);

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_rx_fifo), REEL_FIELD(m_host_queue), REEL_FIELD(m_host_head), REEL_FIELD(m_ier),
       REEL_FIELD(m_lcr), REEL_FIELD(m_mcr), REEL_FIELD(m_lsr), REEL_FIELD(m_msr), REEL_FIELD(m_scr),
       REEL_FIELD(m_dll), REEL_FIELD(m_dlm), REEL_FIELD(m_fcr), REEL_FIELD(m_thre_pending),
       REEL_FIELD(m_timeout_pending), REEL_FIELD(m_irq_level), REEL_FIELD(m_dropped_input),
       REEL_FIELD(m_overruns));
  }
  REEL_DEVICE_STATE

  static constexpr size_t kFifoSize = 16;
  static constexpr size_t kHostQueueLimit = 1u << 20;
  u64 dropped_input() const { return m_dropped_input; }
  u64 overruns() const { return m_overruns; }

 private:
  bool fifo_enabled() const { return m_fcr & 0x01; }
  size_t rx_capacity() const { return fifo_enabled() ? kFifoSize : 1; }
  size_t trigger_level() const;
  u64 char_time_ns() const;
  u8 iir() const;
  void update_irq();
  void update_msr(u8 old_mcr);
  void push_rx(u8 byte);
  void feed_from_host();
  void arm_timeout();
  void transmit(u8 byte);
  bool host_pending() const { return m_host_head < m_host_queue.size(); }
  u8 read_byte(u32 offset);
  void write_byte(u32 offset, u8 value);

  Scheduler& m_scheduler;
  const VirtualClock& m_clock;
  HostIO& m_host;
  ChannelId m_channel;
  IrqLine m_irq;
  Scheduler::TimerId m_rx_timer;
  Scheduler::TimerId m_timeout_timer;

  std::vector<u8> m_rx_fifo;
  std::vector<u8> m_host_queue;
  u64 m_host_head = 0;  // bytes of m_host_queue already delivered
  u8 m_ier = 0, m_lcr = 0, m_mcr = 0, m_lsr = 0, m_msr = 0, m_scr = 0, m_dll = 0, m_dlm = 0, m_fcr = 0;
  bool m_thre_pending = false;
  bool m_timeout_pending = false;
  bool m_irq_level = false;
  u64 m_dropped_input = 0;
  u64 m_overruns = 0;
};

}  // namespace reel
