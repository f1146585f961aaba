// Random port I/O against the PC's devices (PIC, PIT, UART, CMOS, PCI,
// ports 0x80 and 0x92) with virtual time advancing and timers firing in
// between: guest register abuse must never crash or hang reel.

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/guest_memory.h"
#include "core/host_io.h"
#include "core/machine.h"
#include "devices/cmos_rtc.h"
#include "devices/i440fx_host_bridge.h"
#include "devices/pci_bus.h"
#include "devices/pci_firmware_setup.h"
#include "devices/pic.h"
#include "devices/piix3_isa_bridge.h"
#include "devices/pit.h"
#include "devices/post_port.h"
#include "devices/uart.h"
#include "tests/fuzz/null_host_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  reel::fuzz::NullHostIO host;
  reel::MachineConfig config;
  config.ram_bytes = 4u << 20;
  reel::Machine m(config, host);
  auto& pic = m.add_device<reel::Pic>(m.cpu());
  pic.map_into(m.ports());
  m.cpu().set_interrupt_controller(&pic);
  m.add_device<reel::Pit>(m.scheduler(), m.clock(), reel::IrqLine{&pic, 0}).map_into(m.ports());
  m.add_device<reel::CmosRtc>(m.scheduler(), m.clock(), host, reel::IrqLine{&pic, 8}, config.ram_bytes,
                              std::nullopt)
      .map_into(m.ports());
  auto& uart = m.add_device<reel::Uart>("uart.0", m.scheduler(), m.clock(), host, 0, reel::IrqLine{&pic, 4});
  uart.map_into(m.ports(), 0x3f8);
  m.add_device<reel::PostPort>().map_into(m.ports());
  auto& pci = m.add_device<reel::PciBus>();
  pci.map_into(m.ports());
  reel::I440fxHostBridge host_bridge;
  reel::Piix3IsaBridge isa_bridge;
  pci.attach(&host_bridge);
  pci.attach(&isa_bridge);
  reel::assign_pci_resources(pci, isa_bridge);

  static const uint16_t kPorts[] = {0x20,  0x21,  0xa0,  0xa1,  0x4d0, 0x4d1, 0x40,  0x41,  0x42,
                                    0x43,  0x61,  0x70,  0x71,  0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc,
                                    0x3fd, 0x3fe, 0x3ff, 0xcf8, 0xcfc, 0xcfd, 0xcfe, 0xcff, 0x80};
  size_t i = 0;
  while (i + 3 <= size) {
    const uint8_t op = data[i], sel = data[i + 1], value = data[i + 2];
    i += 3;
    const uint16_t port = kPorts[sel % (sizeof kPorts / sizeof kPorts[0])];
    const unsigned width = 1u << (op >> 6 & 1);
    switch (op & 3) {
      case 0:
        m.ports().write(port, width, value | (port == 0xcf8 ? 0x80000000u : 0));
        break;
      case 1:
        (void)m.ports().read(port, width);
        break;
      case 2:
        // Let virtual time pass and due timers fire.
        m.clock().advance_idle_to(m.clock().now_ns() + reel::u64{value} * 10000);
        m.scheduler().run_due(m.clock().now_ns());
        if (pic.intr_pending()) (void)pic.acknowledge();
        break;
      case 3: {
        const uint8_t byte = value;
        uart.receive(std::span<const uint8_t>(&byte, 1));
        break;
      }
    }
  }
  (void)m.state_hash();
  return 0;
}
