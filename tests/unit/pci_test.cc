// PCI configuration mechanism #1, the i440FX/PIIX3 functions, BAR sizing and
// remapping, and what firmware setup leaves for a -kernel boot.

#include <gtest/gtest.h>

#include <sstream>
#include <vector>

#include "core/port_bus.h"
#include "devices/i440fx_host_bridge.h"
#include "devices/pci_bus.h"
#include "devices/pci_device.h"
#include "devices/pci_firmware_setup.h"
#include "devices/piix3_isa_bridge.h"

namespace reel {
namespace {

// The registers behind a NIC's I/O BAR: reads return 0x40 + offset.
class IoRegs : public Device {
 public:
  IoRegs() : Device("io") {}
  void reset() override {}
  u32 read(u32 offset, unsigned) override { return 0x40 + offset; }
  void write(u32, unsigned, u32) override {}
  template <class A>
  void serialize(A&) {}
  REEL_DEVICE_STATE
};

// A NIC-like function with an I/O BAR 0 and a memory BAR 1 that records
// where its memory BAR decodes.
class TestNic : public PciDevice {
 public:
  TestNic(unsigned slot, PortBus& ports, Device& io)
      : PciDevice("nic", slot, 0, Identity{0x10ec, 0x8139, 0x20, 0x020000, 0x1af4, 0x1100, 0, 1}) {
    add_io_bar(0, 0x100, &ports, &io);
    add_memory_bar(1, 0x100);
  }
  std::vector<u32> mem_moves;

 protected:
  void memory_bar_changed(unsigned index, u32 base) override {
    if (index == 1) mem_moves.push_back(base);
  }
};

class PciTest : public ::testing::Test {
 protected:
  PciTest() {
    bus.map_into(ports);
    bus.attach(&nic);  // attach order does not matter: the bus keeps slot order
    bus.attach(&host);
    bus.attach(&isa);
  }
  u32 cfg_read(unsigned slot, u8 reg, unsigned size = 4, unsigned fn = 0) {
    ports.write(0xcf8, 4, 0x80000000u | slot << 11 | fn << 8 | (reg & 0xfc));
    return ports.read(static_cast<u16>(0xcfc + (reg & 3)), size);
  }
  void cfg_write(unsigned slot, u8 reg, unsigned size, u32 value) {
    ports.write(0xcf8, 4, 0x80000000u | slot << 11 | (reg & 0xfc));
    ports.write(static_cast<u16>(0xcfc + (reg & 3)), size, value);
  }
  PortBus ports;
  PciBus bus;
  I440fxHostBridge host;
  Piix3IsaBridge isa;
  IoRegs io;
  TestNic nic{3, ports, io};
};

TEST_F(PciTest, HostBridgeAndIsaBridgeIdentity) {
  EXPECT_EQ(cfg_read(0, 0x00), 0x12378086u);
  EXPECT_EQ(cfg_read(0, 0x08) >> 8, 0x060000u);  // host bridge
  EXPECT_EQ(cfg_read(0, 0x0e, 1), 0x00u);        // header type 0
  EXPECT_EQ(cfg_read(1, 0x00), 0x70008086u);
  EXPECT_EQ(cfg_read(1, 0x0a, 2), 0x0601u);   // ISA bridge
  EXPECT_EQ(cfg_read(1, 0x0e, 1), 0x80u);     // multi-function
  EXPECT_EQ(cfg_read(1, 0x60), 0x0b0b0a0au);  // PIRQA-D -> 10, 10, 11, 11
  EXPECT_EQ(bus.devices().front(), &host);
}

TEST_F(PciTest, ConfigAddressRegisterAndAbsentFunctions) {
  ports.write(0xcf8, 4, 0x80001813u);
  EXPECT_EQ(ports.read(0xcf8, 4), 0x80001810u);  // low two bits read as zero
  EXPECT_EQ(cfg_read(7, 0x00), 0xffffffffu);
  EXPECT_EQ(cfg_read(0, 0x00, 4, 1), 0xffffffffu);  // function 1 of slot 0
  EXPECT_EQ(cfg_read(7, 0x00, 2), 0xffffu);
  // Bus 1 does not exist.
  ports.write(0xcf8, 4, 0x80010000u);
  EXPECT_EQ(ports.read(0xcfc, 4), 0xffffffffu);
  // Without the enable bit the data window reads all-ones.
  ports.write(0xcf8, 4, 0x00000000u);
  EXPECT_EQ(ports.read(0xcfc, 4), 0xffffffffu);
  // Byte writes to 0xCF8-0xCFB do not change the address (0xCF9 is reset control).
  ports.write(0xcf8, 4, 0x80000000u);
  ports.write(0xcf9, 1, 0x06);
  EXPECT_EQ(ports.read(0xcf8, 4), 0x80000000u);
}

TEST_F(PciTest, ByteWordDwordAccessAtAnyOffset) {
  EXPECT_EQ(cfg_read(3, 0x00, 1), 0xecu);
  EXPECT_EQ(cfg_read(3, 0x01, 1), 0x10u);
  EXPECT_EQ(cfg_read(3, 0x02, 2), 0x8139u);
  EXPECT_EQ(cfg_read(3, 0x03, 1), 0x81u);
  EXPECT_EQ(cfg_read(3, 0x08, 1), 0x20u);     // revision
  EXPECT_EQ(cfg_read(3, 0x2c), 0x11001af4u);  // subsystem
  EXPECT_EQ(cfg_read(3, 0x3d, 1), 0x01u);     // INTA#
  cfg_write(3, 0x3c, 1, 0x0b);
  EXPECT_EQ(cfg_read(3, 0x3c, 2), 0x010bu);
  cfg_write(3, 0x3d, 1, 0x04);  // the pin is read-only
  EXPECT_EQ(cfg_read(3, 0x3d, 1), 0x01u);
  cfg_write(3, 0x00, 4, 0);  // so are the IDs
  EXPECT_EQ(cfg_read(3, 0x00), 0x813910ecu);
}

TEST_F(PciTest, BarSizingProtocol) {
  cfg_write(3, 0x10, 4, 0xffffffffu);
  EXPECT_EQ(cfg_read(3, 0x10), 0xffffff01u);  // 256 bytes of I/O
  cfg_write(3, 0x14, 4, 0xffffffffu);
  EXPECT_EQ(cfg_read(3, 0x14), 0xffffff00u);  // 256 bytes of 32-bit memory
  cfg_write(3, 0x18, 4, 0xffffffffu);
  EXPECT_EQ(cfg_read(3, 0x18), 0u);    // unimplemented BAR
  EXPECT_TRUE(nic.mem_moves.empty());  // sizing never decodes
}

TEST_F(PciTest, IoBarFollowsCommandAndMoves) {
  cfg_write(3, 0x10, 4, 0xc100);
  EXPECT_EQ(ports.read(0xc105, 1), 0xffu);  // I/O decoding still off
  cfg_write(3, 0x04, 2, 0x0001);
  EXPECT_EQ(ports.read(0xc105, 1), 0x45u);
  cfg_write(3, 0x10, 4, 0xd001);
  EXPECT_EQ(ports.read(0xc105, 1), 0xffu);
  EXPECT_EQ(ports.read(0xd0ff, 1), 0x13fu);
  cfg_write(3, 0x04, 2, 0x0000);
  EXPECT_EQ(ports.read(0xd005, 1), 0xffu);
  // A BAR placed over another device's ports does not decode, and does not
  // throw into the guest.
  cfg_write(3, 0x10, 4, 0x0cf8 & ~0xffu);
  cfg_write(3, 0x04, 2, 0x0001);
  EXPECT_EQ(nic.bar_conflicts(), 1u);
  EXPECT_EQ(ports.read(0xcf8, 4) >> 31, 1u);  // the config address register survives
}

TEST_F(PciTest, MemoryBarReportsDecoding) {
  cfg_write(3, 0x14, 4, 0xfebf1000u);
  EXPECT_TRUE(nic.mem_moves.empty());
  cfg_write(3, 0x04, 2, 0x0002);
  cfg_write(3, 0x14, 4, 0xfebf2000u);
  cfg_write(3, 0x04, 2, 0x0000);
  EXPECT_EQ(nic.mem_moves, (std::vector<u32>{0xfebf1000u, 0xfebf2000u, 0u}));
}

TEST_F(PciTest, CommandAndStatusBits) {
  cfg_write(3, 0x04, 4, 0xffffffffu);
  EXPECT_EQ(cfg_read(3, 0x04, 2), 0x0507u);  // I/O, memory, master, SERR, INTx disable
  EXPECT_EQ(cfg_read(3, 0x06, 2), 0x0000u);
}

TEST_F(PciTest, PirqSwizzleAndRouting) {
  // QEMU's pc wiring: slot 1 INTA# is PIRQA; each slot rotates by one.
  EXPECT_EQ(isa.isa_irq_for(1, 1), 10);  // PIRQA
  EXPECT_EQ(isa.isa_irq_for(2, 1), 10);  // PIRQB
  EXPECT_EQ(isa.isa_irq_for(3, 1), 11);  // PIRQC
  EXPECT_EQ(isa.isa_irq_for(4, 1), 11);  // PIRQD
  EXPECT_EQ(isa.isa_irq_for(5, 1), 10);  // PIRQA again
  EXPECT_EQ(isa.isa_irq_for(3, 2), 11);  // INTB# of slot 3: PIRQD
  EXPECT_EQ(isa.isa_irq_for(3, 0), -1);
  EXPECT_EQ(isa.routed_irq_mask(), (1u << 10) | (1u << 11));
  cfg_write(1, 0x62, 1, 0x85);  // disable PIRQC
  EXPECT_EQ(isa.isa_irq_for(3, 1), -1);
  cfg_write(1, 0x62, 1, 0x05);
  EXPECT_EQ(isa.isa_irq_for(3, 1), 5);
}

TEST_F(PciTest, FirmwareSetupAssignsWhatSeaBiosWould) {
  const u16 level = assign_pci_resources(bus);
  EXPECT_EQ(level, (1u << 10) | (1u << 11));  // for pic.set_elcr()
  EXPECT_EQ(cfg_read(3, 0x10), 0xc001u);
  const u32 mem = cfg_read(3, 0x14);
  EXPECT_GE(mem, 0xe0000000u);
  EXPECT_LT(mem, 0xfec00000u);
  EXPECT_EQ(mem & 0xff, 0u);
  EXPECT_EQ(cfg_read(3, 0x04, 2) & 0x7, 0x7u);  // I/O, memory, bus master
  EXPECT_EQ(cfg_read(3, 0x3c, 1), 11u);
  EXPECT_EQ(ports.read(0xc005, 1), 0x45u);
  EXPECT_EQ(nic.mem_moves, (std::vector<u32>{mem}));
  // The bridges have no BARs and keep their command registers.
  EXPECT_EQ(cfg_read(0, 0x04, 2), 0u);
}

TEST_F(PciTest, StateLoadMovesMappings) {
  assign_pci_resources(bus, isa);
  std::stringstream ss;
  {
    BinaryOut out(ss);
    bus.save_state(out);
  }
  cfg_write(3, 0x10, 4, 0xd001);
  EXPECT_EQ(ports.read(0xd005, 1), 0x45u);
  {
    BinaryIn in(ss);
    bus.load_state(in);
  }
  EXPECT_EQ(ports.read(0xd005, 1), 0xffu);
  EXPECT_EQ(ports.read(0xc005, 1), 0x45u);
}

}  // namespace
}  // namespace reel
