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

namespace {

class FuzzHost : public reel::HostIO {
 public:
  size_t take = SIZE_MAX;  // how much of each send the "host" accepts
  void attach(const reel::VirtualClock*, std::function<reel::u64()>) override {}
  reel::i64 host_time_ns() override { return 0; }
  reel::HostFile read_file(const std::string&) override { return {}; }
  reel::ChannelId open_console(const reel::ConsoleSpec&) override { return 0; }
  void console_write(reel::ChannelId, std::span<const reel::u8>) override {}
  reel::SocketOpenResult socket_open(const reel::SocketSpec&) override {
    reel::SocketOpenResult r;
    r.ok = true;
    r.id = m_next++;
    return r;
  }
  size_t socket_send(reel::SocketId, std::span<const reel::u8> bytes) override {
    return bytes.size() < take ? bytes.size() : take;
  }
  size_t socket_send_to(reel::SocketId, const reel::SocketAddress&, std::span<const reel::u8> b) override {
    return b.size();
  }
  void socket_pause(reel::SocketId, bool) override {}
  void socket_shutdown(reel::SocketId) override {}
  void socket_close(reel::SocketId) override {}
  reel::u64 next_stop_icount() override { return reel::kNever; }
  bool boundary(reel::InputSink&) override { return true; }
  std::optional<reel::u64> idle(std::optional<reel::u64> d) override { return d; }
  void finish(const reel::RunEnd&) override {}
  reel::SocketId next_id() const { return m_next; }

 private:
  reel::SocketId m_next = 0;
};

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
  FuzzHost host;
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
