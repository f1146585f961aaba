#include "replay/live_host_io.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "core/virtual_clock.h"

namespace reel {

namespace {

u64 monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<u64>(ts.tv_sec) * 1'000'000'000u + static_cast<u64>(ts.tv_nsec);
}

// Reading more per boundary would only delay the guest's view of the rest.
constexpr size_t kInputReadSize = 4096;
// Idle waits poll in slices so a stop request (Ctrl-C) is seen soon even if
// its signal landed between two checks.
constexpr u64 kIdleSliceNs = 100'000'000;

}  // namespace

LiveHostIO::LiveHostIO(Options options) : m_options(options) {
  if (m_options.poll_interval == 0) m_options.poll_interval = 1;
}
LiveHostIO::~LiveHostIO() = default;

void LiveHostIO::attach(const VirtualClock* clock, std::function<u64()> state_hasher) {
  m_clock = clock;
  m_hasher = std::move(state_hasher);
}

u64 LiveHostIO::current_icount() const { return m_clock ? m_clock->icount() : 0; }

i64 LiveHostIO::host_time_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<i64>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

HostFile LiveHostIO::read_host_file(const std::string& path) {
  HostFile f;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    f.error = std::strerror(errno);
    return f;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    f.error = std::strerror(EISDIR);
    return f;
  }
  if (st.st_size > 0) f.bytes.reserve(static_cast<size_t>(st.st_size));
  u8 buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      f.error = std::strerror(errno);
      f.bytes.clear();
      ::close(fd);
      return f;
    }
    f.bytes.insert(f.bytes.end(), buf, buf + n);
  }
  ::close(fd);
  f.ok = true;
  return f;
}

HostFile LiveHostIO::read_file(const std::string& path) { return read_host_file(path); }

std::string LiveHostIO::jailed_journal_path(const std::string& root, const std::string& name) {
  return name + " under " + root;
}

namespace {

HostFile refuse(const std::string& why) {
  HostFile f;
  f.refused = true;
  f.error = kHostFileRefusedPrefix + why;
  return f;
}

HostFile host_error(const std::string& what, int err) {
  HostFile f;
  f.error = what + std::strerror(err);
  return f;
}

std::optional<std::string> real_path(const std::string& path, int& err) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (!resolved) {
    err = errno;
    return std::nullopt;
  }
  std::string out(resolved);
  std::free(resolved);
  return out;
}

// Opens `relative` (no symlinks, no "..", as realpath() gave it) beneath
// the directory `dir_fd`. openat2() with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS
// makes the kernel refuse anything that escapes or was swapped for a
// symlink since realpath() looked; kernels without it (or with it filtered)
// fall back to O_NOFOLLOW on the last component.
int open_beneath(int dir_fd, const std::string& relative) {
  const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
#ifdef SYS_openat2
  open_how how{};
  how.flags = static_cast<u64>(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const long fd = ::syscall(SYS_openat2, dir_fd, relative.c_str(), &how, sizeof how);
  if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return static_cast<int>(fd);
#endif
  return ::openat(dir_fd, relative.c_str(), flags);
}

}  // namespace

HostFile LiveHostIO::read_file_under(const std::string& root, const std::string& name) {
  if (root.empty()) return refuse("no root directory");
  if (name.empty()) return refuse("empty name");
  if (name.find('\0') != std::string::npos) return refuse("NUL in the name");
  if (name[0] == '/') return refuse("absolute name");
  for (size_t start = 0; start <= name.size();) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0) return refuse("\"..\" in the name");
    start = end + 1;
  }
  int err = 0;
  const std::optional<std::string> real_root = real_path(root, err);
  if (!real_root) return host_error("root " + root + ": ", err);
  const std::optional<std::string> real = real_path(root + "/" + name, err);
  if (!real) return host_error("", err);
  // The root itself (".", "sub/") is a directory; anything else must lie
  // strictly beneath it. The trailing slash keeps /srv/tftp2 from passing
  // for a child of /srv/tftp.
  if (*real == *real_root) return refuse("not a regular file");
  const std::string prefix = *real_root == "/" ? std::string("/") : *real_root + "/";
  if (!real->starts_with(prefix)) return refuse("outside the root");
  const std::string relative = real->substr(prefix.size());
  const int dir_fd = ::open(real_root->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return host_error("root " + root + ": ", errno);
  const int fd = open_beneath(dir_fd, relative);
  const int open_errno = errno;
  ::close(dir_fd);
  if (fd < 0) {
    // A symlink or an escape that appeared after realpath() looked.
    if (open_errno == ELOOP || open_errno == EXDEV) return refuse("outside the root");
    return host_error("", open_errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return host_error("", e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return refuse("not a regular file");
  }
  if (static_cast<u64>(st.st_size) > kMaxHostFileUnder) {
    ::close(fd);
    return refuse("larger than " + std::to_string(kMaxHostFileUnder) + " bytes");
  }
  HostFile f;
  f.bytes.reserve(static_cast<size_t>(st.st_size));
  u8 buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return host_error("", e);
    }
    // The file may grow while it is read; the cap holds regardless.
    if (f.bytes.size() + static_cast<size_t>(n) > kMaxHostFileUnder) {
      ::close(fd);
      return refuse("larger than " + std::to_string(kMaxHostFileUnder) + " bytes");
    }
    f.bytes.insert(f.bytes.end(), buf, buf + n);
  }
  ::close(fd);
  f.ok = true;
  return f;
}

ChannelId LiveHostIO::open_console(const ConsoleSpec& spec) {
  const ChannelId id = m_consoles.open(spec);
  // One descriptor cannot feed two consoles; the first that asks gets it.
  if (spec.kind == ConsoleSpec::Kind::stdio && spec.wants_input && !m_input_channel &&
      m_options.input_fd >= 0) {
    m_input_channel = id;
  }
  if (spec.kind == ConsoleSpec::Kind::unix_server && spec.wants_input) m_unix_inputs.push_back(id);
  return id;
}

void LiveHostIO::console_write(ChannelId channel, std::span<const u8> bytes) {
  m_consoles.write(channel, bytes);
}

void LiveHostIO::read_input() {
  if (!m_input_channel) return;
  pollfd p{m_options.input_fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return;
  if (!(p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) return;
  u8 buf[kInputReadSize];
  ssize_t n;
  do {
    n = ::read(m_options.input_fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    m_pending_input.insert(m_pending_input.end(), buf, buf + n);
  } else if (n == 0 || errno != EAGAIN) {
    m_input_channel.reset();  // EOF or a broken descriptor: no more input
  }
}

void LiveHostIO::read_unix_inputs() {
  for (const ChannelId channel : m_unix_inputs) {
    const int fd = m_consoles.client_fd(channel);
    if (fd < 0) continue;
    u8 buf[kInputReadSize];
    ssize_t n;
    do {
      n = ::read(fd, buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      std::vector<u8>& pending = m_unix_pending[channel];
      pending.insert(pending.end(), buf, buf + n);
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      m_consoles.drop_client(channel);  // the client left; the next one may come
    }
  }
}

SocketOpenResult LiveHostIO::socket_open(const SocketSpec& spec) {
  m_uses_sockets = true;
  return m_sockets.open(spec);
}
size_t LiveHostIO::socket_send(SocketId socket, std::span<const u8> bytes) {
  return m_sockets.send(socket, bytes);
}
size_t LiveHostIO::socket_send_to(SocketId socket, const SocketAddress& to, std::span<const u8> bytes) {
  return m_sockets.send_to(socket, to, bytes);
}
void LiveHostIO::socket_pause(SocketId socket, bool paused) { m_sockets.pause(socket, paused); }
void LiveHostIO::socket_shutdown(SocketId socket) { m_sockets.shutdown(socket); }
void LiveHostIO::socket_close(SocketId socket) { m_sockets.close(socket); }

u64 LiveHostIO::next_stop_icount() { return current_icount() + m_options.poll_interval; }

bool LiveHostIO::boundary(InputSink& sink) {
  // The channel is remembered before reading: input read just before EOF
  // still belongs to it.
  const std::optional<ChannelId> channel = m_input_channel;
  read_input();
  if (channel && !m_pending_input.empty()) {
    const std::vector<u8> bytes = std::move(m_pending_input);
    m_pending_input.clear();
    on_input(*channel, bytes);
    sink.deliver_input(*channel, bytes);
  }
  read_unix_inputs();
  for (auto& [unix_channel, pending] : m_unix_pending) {
    if (pending.empty()) continue;
    const std::vector<u8> bytes = std::move(pending);
    pending.clear();
    on_input(unix_channel, bytes);
    sink.deliver_input(unix_channel, bytes);
  }
  m_socket_events.clear();
  m_sockets.poll(m_socket_events);
  for (const SocketEvent& e : m_socket_events) {
    on_socket_event(e);
    sink.deliver_socket_event(e);
  }
  for (SocketEvent& e : m_socket_events) {
    if (e.kind == SocketEvent::Kind::data) m_sockets.recycle(std::move(e.bytes));
  }
  return true;
}

u64 LiveHostIO::wait_for_input(u64 timeout_ns) {
  const u64 start = monotonic_ns();
  u64 elapsed = 0;
  std::vector<pollfd> fds;
  while (elapsed < timeout_ns && has_live_inputs()) {
    if (m_sockets.has_pending()) break;
    const u64 slice = std::min(timeout_ns - elapsed, kIdleSliceNs);
    fds.clear();
    if (m_input_channel) fds.push_back(pollfd{m_options.input_fd, POLLIN, 0});
    m_consoles.add_pollfds(fds);
    const size_t first_socket = fds.size();
    m_sockets.add_pollfds(fds);
    const int ms = static_cast<int>((slice + 999'999) / 1'000'000);
    const int r = ::poll(fds.data(), fds.size(), ms);
    elapsed = monotonic_ns() - start;
    if (r > 0) {
      // readable, or EOF: boundary() reads it, using what this poll saw
      m_sockets.set_readiness(std::span<const pollfd>(fds).subspan(first_socket));
      break;
    }
    if (r < 0 && errno == EINTR) break;  // a signal (Ctrl-C): let the loop look
  }
  return std::min(elapsed, timeout_ns);
}

std::optional<u64> LiveHostIO::idle(std::optional<u64> deadline_ns) {
  m_last_idle_waited = false;
  if (!has_live_inputs()) return deadline_ns;  // nothing but a timer can wake the guest
  if (!m_options.pacing && deadline_ns) return deadline_ns;
  // Wait on real time, one virtual ns per real ns, until the deadline or
  // until input is readable; the boundary() that follows delivers it.
  const u64 now = m_clock ? m_clock->now_ns() : 0;
  const u64 limit = deadline_ns ? (*deadline_ns > now ? *deadline_ns - now : 0) : kNever;
  m_last_idle_waited = true;
  const u64 waited = wait_for_input(limit);
  return waited > kNever - now ? kNever : now + waited;
}

void LiveHostIO::finish(const RunEnd&) {}

}  // namespace reel
