#include "replay/live_consoles.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace reel {

struct LiveConsoles::Console {
  ConsoleSpec spec;
  int fd = -1;
  bool owns_fd = false;
  XXH3_state_t* state = nullptr;
  u64 total = 0;

  Console() {
    state = XXH3_createState();
    if (!state) throw std::bad_alloc();
    XXH3_64bits_reset(state);
  }
  ~Console() {
    if (owns_fd && fd >= 0) ::close(fd);
    XXH3_freeState(state);
  }
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;
};

namespace {

void write_all(int fd, std::span<const u8> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
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

LiveConsoles::LiveConsoles() = default;
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
  if (c.fd >= 0) write_all(c.fd, bytes);
}

LiveConsoles::Digest LiveConsoles::digest(ChannelId channel) const {
  const Console& c = *m_consoles.at(channel);
  return Digest{c.total, XXH3_64bits_digest(c.state)};
}

const ConsoleSpec& LiveConsoles::spec(ChannelId channel) const { return m_consoles.at(channel)->spec; }

}  // namespace reel
