#pragma once

#include "core/device.h"
#include "core/interrupts.h"
#include "core/scheduler.h"
#include "core/virtual_clock.h"

namespace reel {

class PortBus;

// The 8254 programmable interval timer (0x40-0x43) and the system control
// port B at 0x61 (channel 2 gate, speaker, OUT2, refresh toggle). Counters
// are a function of virtual time: they tick at 1.193182 MHz, computed from
// the clock on every read, and channel 0's rising OUT edges drive IRQ0
// through one scheduler timer, so nothing polls.
class Pit : public Device {
 public:
  static constexpr u64 kFrequencyHz = 1193182;

  Pit(Scheduler& scheduler, const VirtualClock& clock, IrqLine irq0);

  void map_into(PortBus& ports);

  void reset() override;
  u32 read(u32 offset, unsigned size) override;
  void write(u32 offset, unsigned size, u32 value) override;

  struct Channel {
    u8 mode = 0;
    u8 rw = 3;  // 1 = LSB, 2 = MSB, 3 = LSB then MSB
    bool bcd = false;
    u32 reload = 0x10000;   // N; 0 written means 65536 (10000 in BCD)
    bool counting = false;  // a count was loaded and counting started
    bool gate = true;
    bool triggered = false;  // modes 1 and 5 wait for a gate edge
    u64 start_ns = 0;        // virtual time counting (re)started
    u64 base_ticks = 0;      // ticks elapsed before start_ns (gate pauses)
    u16 latch = 0;
    u8 latch_bytes = 0;  // latched count bytes left to read (0, 1 or 2)
    bool latch_msb_next = false;
    u8 status = 0;
    bool status_latched = false;
    bool read_msb_next = false;
    bool write_msb_next = false;
    u8 write_lsb = 0;
    bool null_count = true;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(mode), REEL_FIELD(rw), REEL_FIELD(bcd), REEL_FIELD(reload), REEL_FIELD(counting),
         REEL_FIELD(gate), REEL_FIELD(triggered), REEL_FIELD(start_ns), REEL_FIELD(base_ticks),
         REEL_FIELD(latch), REEL_FIELD(latch_bytes), REEL_FIELD(latch_msb_next), REEL_FIELD(status),
         REEL_FIELD(status_latched), REEL_FIELD(read_msb_next), REEL_FIELD(write_msb_next),
         REEL_FIELD(write_lsb), REEL_FIELD(null_count));
    }
  };

  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("channel0", m_ch[0]), cereal::make_nvp("channel1", m_ch[1]),
       cereal::make_nvp("channel2", m_ch[2]), REEL_FIELD(m_speaker), REEL_FIELD(m_port_b_low),
       REEL_FIELD(m_next_edge_tick));
  }
  REEL_DEVICE_STATE

  // For tests: the counter value and OUT level as the guest would see them.
  u16 count(int channel) const;
  bool out(int channel) const;

  static u64 ns_to_ticks(u64 ns);
  static u64 ticks_to_ns_ceil(u64 ticks);

 private:
  u64 elapsed_ticks(const Channel& c) const;
  u16 count_at(const Channel& c, u64 ticks) const;
  bool out_at(const Channel& c, u64 ticks) const;
  void latch_count(int channel);
  void latch_status(int channel);
  void write_control(u8 value);
  void write_counter(int channel, u8 value);
  u8 read_counter(int channel);
  void load(int channel, u32 value);
  void set_gate2(bool gate);
  // Channel 0: arm the timer for its next rising OUT edge.
  void schedule_irq0();
  void on_irq0_edge();
  u8 read_byte(u32 offset);
  void write_byte(u32 offset, u8 value);

  Scheduler& m_scheduler;
  const VirtualClock& m_clock;
  IrqLine m_irq0;
  Scheduler::TimerId m_timer;
  Channel m_ch[3];
  bool m_speaker = false;
  u8 m_port_b_low = 0;  // port B bits 2-3
  u64 m_next_edge_tick = 0;
};

}  // namespace reel
