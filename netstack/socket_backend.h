#pragma once

#include <string>
#include <vector>

#include "core/component.h"
#include "core/frame_port.h"
#include "core/host_io.h"
#include "core/scheduler.h"

namespace reel {

class Machine;

// `-net socket,listen=[host]:port` and `-net socket,connect=host:port`: a
// VLAN port that carries frames over TCP in QEMU's stream format (a 4-byte
// big-endian length, then the frame), so reel and qemu-system guests can
// share a VLAN. The listening side accepts any number of peers and relays
// each peer's frames to the others as well as to the hub; the connecting
// side reconnects with backoff when it cannot reach or loses its peer.
// Every socket operation goes through HostIO, so it is journaled and a
// replay opens no sockets; the framing and the peer bookkeeping run in
// replay too.
class SocketBackend : public Component, public FramePort {
 public:
  enum class Mode : u8 { listen, connect };
  struct Config {
    Mode mode = Mode::connect;
    std::string host;  // listen: empty for any address
    u16 port = 0;
  };

  // Opens the socket at once. A listening socket that cannot be bound makes
  // error() non-empty (the harness reports it); a refused connect is retried.
  SocketBackend(std::string name, Machine& machine, Config config);
  ~SocketBackend() override;

  const std::string& error() const { return m_error; }
  // Where a listening backend is bound (the port the host chose for port 0).
  const SocketAddress& local_address() const { return m_local; }

  void receive_frame(std::span<const u8> frame) override;
  std::string describe_port() const override;

  void reset() override {}
  REEL_COMPONENT_STATE

  // Largest length field accepted at all; anything bigger means the peer
  // is not speaking this protocol. QEMU's own limit is 69632 bytes.
  static constexpr u32 kMaxWireFrame = 69632;
  // Bytes queued for one peer whose socket is full; frames beyond it are
  // dropped and counted, as a switch drops on a congested port.
  static constexpr size_t kMaxQueued = 256 * 1024;
  static constexpr u64 kFirstRetryNs = 100'000'000;  // 0.1 s, doubling
  static constexpr u64 kMaxRetryNs = 5'000'000'000;  // up to 5 s

  struct Counters {
    u64 frames_in = 0;
    u64 frames_out = 0;
    u64 dropped_empty = 0;      // zero-length frames from a peer
    u64 dropped_oversize = 0;   // frames larger than any port can take
    u64 dropped_congested = 0;  // a peer's queue was full
    u64 garbage_disconnects = 0;
    u64 reconnects = 0;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(frames_in), REEL_FIELD(frames_out), REEL_FIELD(dropped_empty),
         REEL_FIELD(dropped_oversize), REEL_FIELD(dropped_congested), REEL_FIELD(garbage_disconnects),
         REEL_FIELD(reconnects));
    }
  };
  const Counters& counters() const { return m_counters; }
  size_t peer_count() const;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_listening), REEL_FIELD(m_listen_socket), REEL_FIELD(m_peers), REEL_FIELD(m_retry_ns),
       REEL_FIELD(m_ever_connected), REEL_FIELD(m_counters));
  }

 private:
  struct Peer {
    SocketId socket = 0;
    std::string address;  // for messages
    bool connected = false;
    std::vector<u8> inbox;   // a partly received length+frame
    std::vector<u8> outbox;  // what the host has not taken yet
    bool blocked = false;    // the host took less than offered: wait for `writable`
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(socket), REEL_FIELD(address), REEL_FIELD(connected), REEL_FIELD(inbox),
         REEL_FIELD(outbox), REEL_FIELD(blocked));
    }
  };

  void connect_now();
  void on_listen_event(const SocketEvent& e);
  void on_peer_event(const SocketEvent& e);
  Peer* find_peer(SocketId socket);
  void drop_peer(SocketId socket, const std::string& why);
  // Splits the peer's inbox into frames; false when the peer sent garbage.
  bool take_frames(Peer& peer);
  void send_to_peer(Peer& peer, std::span<const u8> frame);
  void flush(Peer& peer);

  Machine& m_machine;
  Config m_config;
  std::string m_target;  // host:port as the user wrote it
  std::string m_error;
  SocketAddress m_local;
  bool m_listening = false;
  SocketId m_listen_socket = 0;
  std::vector<Peer> m_peers;  // in the order they came
  u64 m_retry_ns = kFirstRetryNs;
  bool m_ever_connected = false;
  Scheduler::TimerId m_retry_timer = 0;
  Counters m_counters;
};

}  // namespace reel
