#pragma once

#include <array>
#include <string>

#include "core/component.h"
#include "core/frame_port.h"
#include "core/host_io.h"

namespace reel {

class Machine;

// `-net socket,mcast=group:port[,localaddr=addr]`: every process joined to
// the group shares the VLAN, one frame per UDP datagram (QEMU's format),
// multicast loopback on so processes on one host hear each other. A
// process hears its own datagrams too; those are recognised by content and
// not handed back to the VLAN they came from.
class McastBackend : public Component, public FramePort {
 public:
  struct Config {
    std::string group;
    u16 port = 0;
    std::string local_address;  // localaddr=: the interface to send and join on
  };

  McastBackend(std::string name, Machine& machine, Config config);

  // Non-empty when the socket could not be opened or joined.
  const std::string& error() const { return m_error; }

  void receive_frame(std::span<const u8> frame) override;
  std::string describe_port() const override;

  void reset() override {}
  REEL_COMPONENT_STATE

  struct Counters {
    u64 frames_in = 0;
    u64 frames_out = 0;
    u64 own_echoes = 0;  // our datagrams coming back through loopback
    u64 dropped_empty = 0;
    u64 dropped_oversize = 0;
    u64 send_failures = 0;  // the host dropped a datagram
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(frames_in), REEL_FIELD(frames_out), REEL_FIELD(own_echoes), REEL_FIELD(dropped_empty),
         REEL_FIELD(dropped_oversize), REEL_FIELD(send_failures));
    }
  };
  const Counters& counters() const { return m_counters; }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_socket), REEL_FIELD(m_open), REEL_FIELD(m_sent), REEL_FIELD(m_sent_next),
       REEL_FIELD(m_counters));
  }

 private:
  void on_event(const SocketEvent& e);

  Machine& m_machine;
  Config m_config;
  std::string m_error;
  bool m_open = false;
  SocketId m_socket = 0;
  // Hashes of the last frames sent, to recognise their loopback copies.
  std::array<u64, 64> m_sent{};
  u32 m_sent_next = 0;
  Counters m_counters;
};

}  // namespace reel
