#pragma once

#include <array>
#include <span>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/frame_port.h"
#include "core/types.h"

namespace reel {

// The NE2000 as guests see it: a National DP8390 network interface
// controller with 32 KiB of buffer RAM behind its remote DMA, the
// station-address PROM, the data port and the reset port. This is also what
// the Realtek RTL8029AS integrates on one PCI chip, so both front-ends
// (Ne2000Isa, Ne2000Pci) share this class and only differ in how they are
// mapped and how their interrupt pin reaches the PIC.
//
// I/O window (offsets from the base):
//   0x00-0x0f  DP8390 registers, four pages selected by CR.PS
//   0x10-0x17  data port: remote DMA, 8/16/32-bit (DCR.WTS picks bytes or words)
//   0x18-0x1f  reset port: any read or write resets the board (ISR.RST)
//
// Card memory as remote DMA addresses: the PROM at 0x0000-0x001f (each MAC
// byte doubled, 0x57 0x57 0x57 0x57 at 28-31), buffer RAM at 0x4000-0xbfff
// (pages 0x40-0xbf). Everything else reads 0xff and ignores writes; such
// accesses are counted, never out of bounds.
//
// Frames are stored without FCS and padded to 60 bytes, as QEMU's model
// does, so guests see the same lengths as under QEMU. Guest misuse of ring
// or DMA registers is dropped and counted (see Counters); every CVE
// sequence that broke QEMU's model has a defined outcome here.
class Dp8390 : public Device, public FramePort {
 public:
  using MacAddress = std::array<u8, 6>;
  static constexpr MacAddress kDefaultMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

  static constexpr u32 kIoSize = 0x20;      // registers, data port, reset port
  static constexpr u32 kPromSize = 32;      // remote DMA 0x0000-0x001f
  static constexpr u32 kRamStart = 0x4000;  // first buffer RAM address
  static constexpr u32 kRamEnd = 0xc000;    // one past the last
  static constexpr u32 kRamSize = kRamEnd - kRamStart;
  static constexpr u8 kRamFirstPage = kRamStart >> 8;
  static constexpr u32 kRamEndPage = kRamEnd >> 8;
  static constexpr size_t kMinStoredFrame = 60;          // shorter frames are padded as the wire does
  static constexpr size_t kMaxFrame = kEthMaxVlanFrame;  // longer ones are dropped and counted

  // Drops and guest misuse, for diagnostics and state diffs.
  struct Counters {
    u64 rx_frames = 0;             // stored in the ring
    u64 tx_frames = 0;             // sent (or looped back)
    u64 rx_stopped = 0;            // arrived while stopped (CR.STP) or in loopback
    u64 rx_filtered = 0;           // rejected by the address filter
    u64 rx_runt = 0;               // shorter than an Ethernet header
    u64 rx_oversize = 0;           // longer than kMaxFrame
    u64 rx_overflow = 0;           // ring full up to BNRY: ISR.OVW, missed-packet tally
    u64 rx_monitor = 0;            // accepted in monitor mode (RCR.MON), not stored
    u64 rx_bad_ring = 0;           // PSTART/PSTOP/CURR outside card RAM or inconsistent
    u64 tx_out_of_range = 0;       // TPSR/TBCR reach outside card RAM: aborted
    u64 tx_oversize = 0;           // TBCR above kMaxFrame: aborted
    u64 tx_stopped = 0;            // CR.TXP while stopped: ignored
    u64 dma_out_of_range = 0;      // remote DMA bytes outside PROM/RAM (or writes to the PROM)
    u64 dma_idle = 0;              // data port used with no remote DMA running
    u64 unsupported_commands = 0;  // CR.RD = 011 (send packet)

    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(rx_frames), REEL_FIELD(tx_frames), REEL_FIELD(rx_stopped), REEL_FIELD(rx_filtered),
         REEL_FIELD(rx_runt), REEL_FIELD(rx_oversize), REEL_FIELD(rx_overflow), REEL_FIELD(rx_monitor),
         REEL_FIELD(rx_bad_ring), REEL_FIELD(tx_out_of_range), REEL_FIELD(tx_oversize),
         REEL_FIELD(tx_stopped), REEL_FIELD(dma_out_of_range), REEL_FIELD(dma_idle),
         REEL_FIELD(unsupported_commands));
    }
  };

  // `model` is the QEMU NIC model name shown by describe_port()
  // ("ne2k_pci", "ne2k_isa").
  Dp8390(std::string name, std::string model, const MacAddress& mac);

  // Power-on reset: registers, buffer RAM and PROM as a cold board has them.
  void reset() override;
  u32 read(u32 offset, unsigned size) override;
  void write(u32 offset, unsigned size, u32 value) override;

  void receive_frame(std::span<const u8> frame) override;
  std::string describe_port() const override;

  const MacAddress& mac() const { return m_mac; }
  const std::string& model() const { return m_model; }
  const Counters& counters() const { return m_counters; }
  // ISR & IMR, the interrupt request before the front-end's gating.
  bool interrupt_pending() const { return (m_isr & m_imr & 0x7f) != 0; }
  // The level this card drives on its interrupt pin now.
  bool irq_level() const { return m_irq_level; }

  // Register views for tests and monitors (no side effects).
  u8 cr() const { return m_cr; }
  u8 isr() const { return m_isr; }
  u8 imr() const { return m_imr; }
  u8 curr() const { return m_curr; }
  u8 bnry() const { return m_bnry; }
  u8 rsr() const { return m_rsr; }
  u8 tsr() const { return m_tsr; }
  u8 tally(unsigned index) const { return m_tally[index]; }
  // One byte of card memory as remote DMA sees it (0xff where nothing is).
  u8 peek(u16 address) const;

  // The 6-bit multicast filter index of a destination address: the top
  // six bits of the Ethernet CRC-32 (MSB-first, no final inversion); bits
  // 5-3 pick MAR0-7 and bits 2-0 the bit in it.
  static unsigned multicast_index(std::span<const u8, 6> address);

  template <class Archive>
  void serialize(Archive& ar);
  REEL_DEVICE_STATE

 protected:
  // The front-end's interrupt pin. drive_irq() is called only when the
  // level changes; irq_gate() lets a front-end mask the pin (PCI INTx
  // disable). Call update_irq() when the gate changes.
  virtual void drive_irq(bool level) = 0;
  virtual bool irq_gate() const { return true; }
  void update_irq();

 private:
  enum class Dma : u8 { idle = 0, read = 1, write = 2 };

  void power_on();
  void board_reset();
  u8 read_port_byte(u32 offset);
  void write_port_byte(u32 offset, u8 value);
  u8 read_register(u8 reg);
  void write_register(u8 reg, u8 value);
  void write_command(u8 value);
  void write_page3(u8 reg, u8 value);
  u8 read_page3(u8 reg) const;

  // Remote DMA through the data port.
  u32 data_read(unsigned size);
  void data_write(unsigned size, u32 value);
  u16 dma_read_unit();
  void dma_write_unit(u16 value);
  void dma_advance(unsigned bytes);
  bool word_mode() const { return m_dcr & 0x01; }
  u8 mem_read(u32 address);
  void mem_write(u32 address, u8 value);

  void start_transmit();
  void accept_frame(std::span<const u8> frame);
  bool address_accepted(std::span<const u8> frame) const;
  bool ring_valid() const;
  void store_frame(std::span<const u8> frame, size_t stored_len, unsigned pages, bool group);
  void count_missed(bool group);
  void bump_tally(unsigned index);

  bool started() const { return (m_cr & 0x03) == 0x02; }
  bool loopback() const { return (m_tcr & 0x06) != 0; }

  MacAddress m_mac;
  std::string m_model;
  std::vector<u8> m_tx_scratch;  // the frame being sent; empty between instructions, not state

  // Registers.
  u8 m_cr = 0;
  u8 m_isr = 0;
  u8 m_imr = 0;
  u8 m_dcr = 0;
  u8 m_tcr = 0;
  u8 m_rcr = 0;
  u8 m_rsr = 0;
  u8 m_tsr = 0;
  u8 m_pstart = 0;
  u8 m_pstop = 0;
  u8 m_bnry = 0;
  u8 m_curr = 0;
  u8 m_tpsr = 0;
  u16 m_tbcr = 0;
  u16 m_rsar = 0;
  u16 m_rbcr = 0;
  u16 m_clda = 0;  // current local DMA address
  u8 m_rnpp = 0;   // page 2 diagnostics: remote/local next packet pointers,
  u8 m_lnpp = 0;   // local address counter
  u16 m_address_counter = 0;
  std::array<u8, 6> m_par{};
  std::array<u8, 8> m_mar{};
  std::array<u8, 3> m_tally{};  // CNTR0-2: frame alignment, CRC, missed packets
  // Remote DMA in progress.
  Dma m_dma = Dma::idle;
  u16 m_crda = 0;           // current remote DMA address
  u16 m_dma_remaining = 0;  // bytes left of RBCR
  // RTL8029AS page 3.
  u8 m_cr9346 = 0;
  u8 m_config2 = 0;
  u8 m_config3 = 0;
  u8 m_hltclk = 0;

  bool m_irq_level = false;
  std::array<u8, kPromSize> m_prom{};
  std::vector<u8> m_ram;  // kRamSize bytes, remote DMA kRamStart..kRamEnd
  Counters m_counters;
};

}  // namespace reel
