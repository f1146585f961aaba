#include "netstack/pcap_dump.h"

#include <algorithm>
#include <vector>

#include "core/machine.h"

namespace reel {

namespace {
constexpr u32 kPcapMagic = 0xa1b2c3d4;  // microsecond stamps, written in our byte order
constexpr u32 kLinkTypeEthernet = 1;

void put_u16(std::vector<u8>& out, u16 v) {
  out.push_back(static_cast<u8>(v));
  out.push_back(static_cast<u8>(v >> 8));
}
void put_u32(std::vector<u8>& out, u32 v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<u8>(v >> (8 * i)));
}
}  // namespace

PcapDump::PcapDump(std::string name, Machine& machine, std::string path, u32 snap_length)
    : Component(std::move(name)), m_machine(machine), m_path(std::move(path)), m_snap_length(snap_length) {
  ConsoleSpec spec;
  spec.name = this->name();
  spec.kind = ConsoleSpec::Kind::file;
  spec.path = m_path;
  m_channel = m_machine.host().open_console(spec);
  // The global header, little-endian as pcap readers expect of magic
  // 0xa1b2c3d4 written on a little-endian host.
  std::vector<u8> header;
  put_u32(header, kPcapMagic);
  put_u16(header, 2);  // version 2.4
  put_u16(header, 4);
  put_u32(header, 0);  // thiszone
  put_u32(header, 0);  // sigfigs
  put_u32(header, m_snap_length);
  put_u32(header, kLinkTypeEthernet);
  m_machine.host().console_write(m_channel, header);
}

std::string PcapDump::describe_port() const {
  return "dump to " + m_path + " (len=" + std::to_string(m_snap_length) + ")";
}

void PcapDump::receive_frame(std::span<const u8> frame) {
  const u64 ns = m_machine.clock().now_ns();
  const u32 caplen = static_cast<u32>(std::min<size_t>(frame.size(), m_snap_length));
  std::vector<u8> record;
  record.reserve(16 + caplen);
  put_u32(record, static_cast<u32>(ns / 1'000'000'000));
  put_u32(record, static_cast<u32>((ns / 1000) % 1'000'000));
  put_u32(record, caplen);
  put_u32(record, static_cast<u32>(frame.size()));
  record.insert(record.end(), frame.begin(), frame.begin() + caplen);
  m_machine.host().console_write(m_channel, record);
  ++m_frames;
  m_bytes += frame.size();
}

}  // namespace reel
