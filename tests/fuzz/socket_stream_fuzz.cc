// The -net socket stream backend fed with arbitrary socket events: peers
// that come and go, length fields of any value, frames split anywhere,
// hosts that take only part of what is sent. Nothing may crash, hang or
// grow without bound.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/machine.h"
#include "netstack/hub.h"
#include "netstack/socket_backend.h"
#include "tests/fuzz/null_host_io.h"

namespace {

// Counts frames and answers some of them, so sends happen from inside
// deliveries.
class Sink : public reel::FramePort {
 public:
  void receive_frame(std::span<const reel::u8> frame) override {
    if (frame.size() > reel::kEthMaxVlanFrame || frame.empty()) __builtin_trap();
    if (++frames % 3 == 0) transmit(frame);
  }
  std::string describe_port() const override { return "sink"; }
  size_t frames = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  reel::fuzz::NullHostIO host;
  reel::MachineConfig config;
  config.ram_bytes = 2u << 20;
  reel::Machine m(config, host);
  auto& hub = m.add_device<reel::Hub>(0);
  const bool listen = size > 0 && (data[0] & 1);
  auto& backend = m.add_device<reel::SocketBackend>(
      "socket.0", m,
      reel::SocketBackend::Config{
          listen ? reel::SocketBackend::Mode::listen : reel::SocketBackend::Mode::connect, "127.0.0.1",
          1234});
  Sink sink;
  hub.attach(backend, "socket.0");
  hub.attach(sink, "sink");
  size_t i = 1;
  while (i + 2 <= size) {
    const uint8_t op = data[i] % 8;
    const reel::SocketId target = data[i + 1] % (host.next_id() + 1);
    i += 2;
    reel::SocketEvent e;
    e.socket = target;
    switch (op) {
      case 0:
        e.kind = reel::SocketEvent::Kind::accepted;
        e.accepted = host.socket_open({}).id;
        break;
      case 1:
        e.kind = reel::SocketEvent::Kind::connected;
        break;
      case 2:
      case 3: {
        e.kind = reel::SocketEvent::Kind::data;
        const size_t n = i < size ? data[i++] * 8u : 0;
        const size_t take = n < size - i ? n : size - i;
        e.bytes.assign(data + i, data + i + take);
        i += take;
        break;
      }
      case 4:
        e.kind = reel::SocketEvent::Kind::writable;
        host.take = SIZE_MAX;
        break;
      case 5:
        e.kind = reel::SocketEvent::Kind::eof;
        break;
      case 6:
        e.kind = reel::SocketEvent::Kind::error;
        e.error = "reset";
        break;
      default: {
        // A frame from the VLAN side, with a host that takes little.
        host.take = target;
        const std::vector<reel::u8> frame(60 + target, 0x5a);
        hub.forward(sink, frame);
        continue;
      }
    }
    m.deliver_socket_event(e);
  }
  // Some time passes: reconnect timers fire.
  m.scheduler().run_due(~reel::u64{0} >> 1);
  (void)backend.peer_count();
  return 0;
}
