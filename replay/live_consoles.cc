#include "replay/live_consoles.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace reel {

struct LiveConsoles::Console {
  ConsoleSpec spec;
  int fd = -1;
  bool owns_fd = false;
  int listen_fd = -1;  // unix_server
  XXH3_state_t* state = nullptr;
  u64 total = 0;

  Console() {
    state = XXH3_createState();
    if (!state) throw std::bad_alloc();
    XXH3_64bits_reset(state);
  }
  ~Console() {
    if (owns_fd && fd >= 0) ::close(fd);
    if (listen_fd >= 0) ::close(listen_fd);
    XXH3_freeState(state);
  }
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;
};

namespace {

void write_all(int fd, std::span<const u8> bytes, bool is_socket) {
  size_t done = 0;
  while (done < bytes.size()) {
    // A socket client that went away must not kill reel with SIGPIPE.
    const ssize_t n = is_socket ? ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL)
                                : ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      // A closed pipe or a full disk loses console output, not the run:
      // the digest still covers what the guest wrote.
      return;
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace

LiveConsoles::LiveConsoles(Mode mode) : m_mode(mode) {}
LiveConsoles::~LiveConsoles() = default;

ChannelId LiveConsoles::open(const ConsoleSpec& spec) {
  auto c = std::make_unique<Console>();
  c->spec = spec;
  switch (spec.kind) {
    case ConsoleSpec::Kind::stdio:
      c->fd = STDOUT_FILENO;
      break;
    case ConsoleSpec::Kind::file:
      c->fd = ::open(spec.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (c->fd < 0) throw HostError(spec.name + ": file:" + spec.path + ": " + std::strerror(errno));
      c->owns_fd = true;
      break;
    case ConsoleSpec::Kind::unix_server: {
      if (m_mode == Mode::replay) break;
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      if (spec.path.empty() || spec.path.size() >= sizeof sa.sun_path)
        throw HostError(spec.name + ": unix:" + spec.path + ": path empty or too long for a socket");
      std::memcpy(sa.sun_path, spec.path.c_str(), spec.path.size() + 1);
      c->listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (c->listen_fd < 0) throw HostError(spec.name + ": unix:" + spec.path + ": " + std::strerror(errno));
      ::unlink(spec.path.c_str());  // a stale socket of an earlier run
      if (::bind(c->listen_fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 ||
          ::listen(c->listen_fd, 1) != 0) {
        throw HostError(spec.name + ": unix:" + spec.path + ": " + std::strerror(errno));
      }
      c->owns_fd = true;
      if (spec.wait_for_client) {
        std::fprintf(stderr, "reel: waiting for a client on unix:%s (%s)\n", spec.path.c_str(),
                     spec.name.c_str());
        pollfd p{c->listen_fd, POLLIN, 0};
        while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
        }
        c->fd = ::accept4(c->listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      }
      break;
    }
    case ConsoleSpec::Kind::none:
      break;
  }
  m_consoles.push_back(std::move(c));
  return static_cast<ChannelId>(m_consoles.size() - 1);
}

void LiveConsoles::write(ChannelId channel, std::span<const u8> bytes) {
  if (channel >= m_consoles.size() || bytes.empty()) return;
  Console& c = *m_consoles[channel];
  XXH3_64bits_update(c.state, bytes.data(), bytes.size());
  c.total += bytes.size();
  if (c.fd >= 0) write_all(c.fd, bytes, c.listen_fd >= 0);
}

LiveConsoles::Digest LiveConsoles::digest(ChannelId channel) const {
  const Console& c = *m_consoles.at(channel);
  return Digest{c.total, XXH3_64bits_digest(c.state)};
}

int LiveConsoles::client_fd(ChannelId channel) {
  if (channel >= m_consoles.size()) return -1;
  Console& c = *m_consoles[channel];
  if (c.fd < 0 && c.listen_fd >= 0)
    c.fd = ::accept4(c.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return c.fd;
}

void LiveConsoles::drop_client(ChannelId channel) {
  if (channel >= m_consoles.size()) return;
  Console& c = *m_consoles[channel];
  if (c.listen_fd < 0 || c.fd < 0) return;
  ::close(c.fd);
  c.fd = -1;
}

void LiveConsoles::add_pollfds(std::vector<pollfd>& fds) const {
  for (const auto& c : m_consoles) {
    if (c->listen_fd < 0) continue;
    fds.push_back(pollfd{c->fd >= 0 ? c->fd : c->listen_fd, POLLIN, 0});
  }
}

const ConsoleSpec& LiveConsoles::spec(ChannelId channel) const { return m_consoles.at(channel)->spec; }

}  // namespace reel
