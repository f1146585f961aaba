#pragma once

// core's NullHostIO for fuzz targets: a fixed date, and sockets that open
// (ids counting up) and take at most `take` bytes of each send. Nothing
// ever arrives by itself; a target delivers socket events to the machine
// directly.

#include <cstdint>

#include "core/null_host_io.h"

namespace reel::fuzz {

class NullHostIO : public reel::NullHostIO {
 public:
  size_t take = SIZE_MAX;

  NullHostIO() : reel::NullHostIO(1700000000ll * 1000000000ll) {}
  SocketOpenResult socket_open(const SocketSpec&) override {
    SocketOpenResult r;
    r.ok = true;
    r.id = m_next++;
    return r;
  }
  size_t socket_send(SocketId, std::span<const u8> bytes) override {
    return bytes.size() < take ? bytes.size() : take;
  }
  size_t socket_send_to(SocketId, const SocketAddress&, std::span<const u8> bytes) override {
    return bytes.size();
  }

  SocketId next_id() const { return m_next; }
  // An id for a connection the host "accepted".
  SocketId new_id() { return m_next++; }

 private:
  SocketId m_next = 0;
};

}  // namespace reel::fuzz
