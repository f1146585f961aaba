#pragma once

#include <string>

#include "core/component.h"
#include "core/frame_port.h"
#include "core/host_io.h"

namespace reel {

class Machine;

// `-net dump,vlan=N,file=F[,len=L]`: a VLAN port that writes every frame it
// sees to a libpcap file (Ethernet link type, microsecond stamps taken from
// virtual time). The file is an output channel of HostIO, so a replay
// writes the same file again and its bytes are checked like console output.
class PcapDump : public Component, public FramePort {
 public:
  static constexpr u32 kDefaultSnapLength = 65536;  // QEMU's default len=

  PcapDump(std::string name, Machine& machine, std::string path, u32 snap_length = kDefaultSnapLength);

  void receive_frame(std::span<const u8> frame) override;
  std::string describe_port() const override;

  void reset() override {}
  REEL_COMPONENT_STATE

  u64 frames_written() const { return m_frames; }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_frames), REEL_FIELD(m_bytes));
  }

 private:
  Machine& m_machine;
  std::string m_path;
  u32 m_snap_length;
  ChannelId m_channel = 0;
  u64 m_frames = 0;
  u64 m_bytes = 0;
};

}  // namespace reel
