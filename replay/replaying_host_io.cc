#include "replay/replaying_host_io.h"

#include <xxhash.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "core/virtual_clock.h"
#include "replay/live_host_io.h"

namespace reel {

namespace {

const char* end_kind_name(u8 kind) {
  switch (static_cast<RunEnd::Kind>(kind)) {
    case RunEnd::Kind::guest_exit:
      return "guest_exit";
    case RunEnd::Kind::shutdown:
      return "shutdown";
    case RunEnd::Kind::stuck:
      return "stuck";
    case RunEnd::Kind::interrupted:
      return "interrupted";
    case RunEnd::Kind::journal_end:
      return "journal_end";
  }
  return "unknown";
}

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

std::string deadline_text(u64 ns) { return ns == kNever ? std::string("none") : std::to_string(ns) + " ns"; }

// Events the loop must stop its CPU slice for; the others are taken by a
// request (synchronous) or by idle(), which only happen where they happen.
bool stops_loop(EventKind kind) { return !is_synchronous(kind) && kind != EventKind::idle_advance; }

}  // namespace

ReplayingHostIO::ReplayingHostIO(const JournalReader& journal, std::string journal_name)
    : m_journal(journal), m_name(std::move(journal_name)), m_consoles(LiveConsoles::Mode::replay) {}

ReplayingHostIO::~ReplayingHostIO() = default;

void ReplayingHostIO::attach(const VirtualClock* clock, std::function<u64()> state_hasher) {
  m_clock = clock;
  m_hasher = std::move(state_hasher);
}

u64 ReplayingHostIO::icount() const { return m_clock ? m_clock->icount() : 0; }

const JournalEvent* ReplayingHostIO::head() const {
  const auto& ev = m_journal.events();
  return m_next < ev.size() ? &ev[m_next] : nullptr;
}

void ReplayingHostIO::diverge(const std::string& what) const {
  m_divergence_icount = icount();
  throw ReplayDivergence(m_name + ": replay diverged at icount " + std::to_string(icount()) + ": " + what);
}

const JournalEvent& ReplayingHostIO::expect(EventKind kind, const std::string& request) {
  const JournalEvent* e = head();
  if (!e) {
    if (!m_journal.has_end()) {
      // The recording was cut short before this request: nothing to answer.
      diverge("the machine asked for " + request + " after the last event of a journal cut short");
    }
    diverge("the machine asked for " + request + " after the journal's end");
  }
  if (e->kind != kind || e->icount != icount()) {
    diverge("the journal expected " + describe_event(*e) + ", the machine asked for " + request);
  }
  ++m_next;
  return *e;
}

i64 ReplayingHostIO::host_time_ns() {
  const JournalEvent& e = expect(EventKind::host_time, "host_time");
  return decode_host_time(e, m_name);
}

HostFile ReplayingHostIO::load_input(const std::string& path, u64 size, u64 hash,
                                     const std::vector<u8>* embedded) {
  HostFile f;
  if (embedded) {
    // The reader checked embedded bytes against their hash.
    f.ok = true;
    f.bytes = *embedded;
    return f;
  }
  std::vector<std::string> candidates = {path};
  const std::string& cwd = m_journal.header().cwd;
  if (!path.empty() && path[0] != '/' && !cwd.empty()) candidates.push_back(cwd + "/" + path);
  std::string error;
  bool found = false;
  for (const auto& candidate : candidates) {
    HostFile c = LiveHostIO::read_host_file(candidate);
    if (!c.ok) {
      if (error.empty()) error = c.error;
      continue;
    }
    found = true;
    if (c.bytes.size() == size && XXH3_64bits(c.bytes.data(), c.bytes.size()) == hash) return c;
    f = std::move(c);
  }
  if (!found) throw InputFileError(path + ": input file of the recording is missing (" + error + ")");
  throw InputFileError(path + ": input file changed since the recording (now " +
                       std::to_string(f.bytes.size()) + " bytes, recorded " + std::to_string(size) +
                       " bytes with xxh3 " + hex(hash) + ")");
}

HostFile ReplayingHostIO::read_file(const std::string& path) {
  // Reads made before the first event chunk are in the header's input
  // table, unless they failed (a failed read is always an event). A
  // file_read event here for the same path came first in the recording.
  const JournalEvent* e = head();
  const bool event_here = e && e->kind == EventKind::file_read && e->icount == icount() &&
                          decode_file_read(*e, m_name).path == path;
  const auto& inputs = m_journal.header().inputs;
  if (!event_here && m_next_input < inputs.size() && inputs[m_next_input].path == path) {
    const InputFile& in = inputs[m_next_input++];
    return load_input(path, in.size, in.hash, in.embedded ? &in.bytes : nullptr);
  }
  const FileReadRecord r = decode_file_read(expect(EventKind::file_read, "file_read of " + path), m_name);
  if (r.path != path) diverge("the journal expected a read of " + r.path + ", the machine read " + path);
  if (!r.ok) {
    HostFile f;
    f.error = r.error;
    return f;
  }
  return load_input(path, r.size, r.hash, r.embedded ? &r.bytes : nullptr);
}

HostFile ReplayingHostIO::read_file_under(const std::string& root, const std::string& name) {
  const std::string key = LiveHostIO::jailed_journal_path(root, name);
  const FileReadRecord r = decode_file_read(expect(EventKind::file_read, "file_read of " + key), m_name);
  if (r.path != key) diverge("the journal expected a read of " + r.path + ", the machine read " + key);
  HostFile f;
  if (!r.ok) {
    f.error = r.error;
    f.refused = r.error.starts_with(kHostFileRefusedPrefix);
    return f;
  }
  // Recordings always embed these; a hand-made journal that does not
  // cannot be answered without the disk, which replay must not read.
  if (!r.embedded) throw InputFileError(key + ": the journal holds no contents for this read");
  f.ok = true;
  f.bytes = r.bytes;
  return f;
}

ChannelId ReplayingHostIO::open_console(const ConsoleSpec& spec) {
  const ConsoleOpenRecord r =
      decode_console_open(expect(EventKind::console_open, "console_open of " + spec.name), m_name);
  ConsoleSpec opened = spec;
  if (m_silent_consoles) opened.kind = ConsoleSpec::Kind::none;
  const ChannelId id = m_consoles.open(opened);
  ReplayCursor::ConsoleDigest digest;
  XXH3_64bits_reset(&digest.state);
  m_console_digests.push_back(digest);
  if (r.channel != id || r.name != spec.name) {
    diverge("the journal opened console " + r.name + " as channel " + std::to_string(r.channel) +
            ", the machine opened " + spec.name + " as channel " + std::to_string(id));
  }
  return id;
}

void ReplayingHostIO::console_write(ChannelId channel, std::span<const u8> bytes) {
  if (channel >= m_console_digests.size()) {
    m_consoles.write(channel, bytes);
    return;
  }
  ReplayCursor::ConsoleDigest& d = m_console_digests[channel];
  // After a snapshot restore (reverse execution under gdb) the machine runs
  // again through output it already showed, and computes the same bytes:
  // only those past what was shown are written out.
  if (m_shown.size() <= channel) m_shown.resize(channel + 1, 0);
  const u64 seen = m_shown[channel] > d.total ? std::min<u64>(m_shown[channel] - d.total, bytes.size()) : 0;
  if (seen < bytes.size()) m_consoles.write(channel, bytes.subspan(seen));
  m_shown[channel] = std::max<u64>(m_shown[channel], d.total + bytes.size());
  XXH3_64bits_update(&d.state, bytes.data(), bytes.size());
  d.total += bytes.size();
}

ReplayCursor ReplayingHostIO::cursor() const {
  ReplayCursor c;
  c.next = m_next;
  c.next_async = m_next_async;
  c.next_input = m_next_input;
  c.checkpoints = m_checkpoints;
  c.digests = m_digests;
  c.recorded_end = m_recorded_end;
  c.last_good_checkpoint = m_last_good_checkpoint;
  c.divergence_icount = m_divergence_icount;
  c.consoles = m_console_digests;
  return c;
}

void ReplayingHostIO::restore_cursor(const ReplayCursor& c) {
  if (c.consoles.size() != m_console_digests.size())
    throw std::logic_error("replay cursor restored into a replay with other consoles");
  m_next = c.next;
  m_next_async = c.next_async;
  m_next_input = c.next_input;
  m_checkpoints = c.checkpoints;
  m_digests = c.digests;
  m_recorded_end = c.recorded_end;
  m_last_good_checkpoint = c.last_good_checkpoint;
  m_divergence_icount = c.divergence_icount;
  m_console_digests = c.consoles;
}

void ReplayingHostIO::start_at_keyframe(size_t index) {
  const auto& ev = m_journal.events();
  if (index >= ev.size() || ev[index].kind != EventKind::keyframe)
    throw std::logic_error("start_at_keyframe: event " + std::to_string(index) + " is not a keyframe");
  const KeyframeRecord k = decode_keyframe(ev[index], m_name);
  if (k.consoles.size() != m_console_digests.size()) {
    throw JournalError(m_name + ": keyframe at icount " + std::to_string(ev[index].icount) + " has " +
                       std::to_string(k.consoles.size()) + " consoles, the machine opened " +
                       std::to_string(m_console_digests.size()));
  }
  m_checkpoints = 0;
  m_digests = 0;
  m_last_good_checkpoint.reset();
  for (size_t i = 0; i < index; ++i) {
    if (ev[i].kind == EventKind::checkpoint) {
      ++m_checkpoints;
      m_last_good_checkpoint = ev[i].icount;
    } else if (ev[i].kind == EventKind::console_digest) {
      ++m_digests;
    }
  }
  m_next = index + 1;
  m_next_async = m_next;
  // Files read before the first event chunk were all read while the
  // machine was built, long before any keyframe.
  m_next_input = m_journal.header().inputs.size();
  m_digest_base = k.consoles;
  m_shown.assign(m_console_digests.size(), 0);
  for (size_t ch = 0; ch < m_console_digests.size(); ++ch) {
    if (k.consoles[ch].channel != ch)
      throw JournalError(m_name + ": keyframe at icount " + std::to_string(ev[index].icount) +
                         " lists its consoles out of order");
    m_console_digests[ch].total = k.consoles[ch].total;
    XXH3_64bits_reset(&m_console_digests[ch].state);
    m_shown[ch] = k.consoles[ch].total;  // output from here on is shown
  }
  m_keyframe_icount = ev[index].icount;
}

SocketOpenResult ReplayingHostIO::socket_open(const SocketSpec& spec) {
  const std::string what = "socket_open of " + spec.host + ":" + std::to_string(spec.port);
  const SocketOpenRecord r = decode_socket_open(expect(EventKind::socket_open, what), m_name);
  if (r.spec.kind != spec.kind || r.spec.host != spec.host || r.spec.port != spec.port ||
      r.spec.local_host != spec.local_host) {
    diverge("the journal opened a socket for " + r.spec.host + ":" + std::to_string(r.spec.port) +
            ", the machine asked for " + spec.host + ":" + std::to_string(spec.port));
  }
  return r.result;
}

size_t ReplayingHostIO::replay_send(SocketId socket, const SocketAddress* to, std::span<const u8> bytes) {
  const std::string what =
      "socket_send of " + std::to_string(bytes.size()) + " bytes to socket " + std::to_string(socket);
  const SocketSendRecord r = decode_socket_send(expect(EventKind::socket_send, what), m_name);
  const u64 hash = XXH3_64bits(bytes.data(), bytes.size());
  const bool same_to = r.has_to == (to != nullptr) && (!to || r.to == *to);
  if (r.socket != socket || !same_to || r.size != bytes.size() || r.hash != hash) {
    diverge("the recording sent " + std::to_string(r.size) + " bytes (xxh3 " + hex(r.hash) + ") to socket " +
            std::to_string(r.socket) + (r.has_to ? " for " + format_socket_address(r.to) : std::string()) +
            ", the replay " + std::to_string(bytes.size()) + " bytes (xxh3 " + hex(hash) + ") to socket " +
            std::to_string(socket) + (to ? " for " + format_socket_address(*to) : std::string()));
  }
  return static_cast<size_t>(r.accepted);
}

size_t ReplayingHostIO::socket_send(SocketId socket, std::span<const u8> bytes) {
  return replay_send(socket, nullptr, bytes);
}

size_t ReplayingHostIO::socket_send_to(SocketId socket, const SocketAddress& to, std::span<const u8> bytes) {
  return replay_send(socket, &to, bytes);
}

void ReplayingHostIO::replay_control(SocketId socket, SocketControlRecord::Op op) {
  const std::string what =
      std::string("socket ") + socket_control_name(op) + " of socket " + std::to_string(socket);
  const SocketControlRecord r = decode_socket_control(expect(EventKind::socket_control, what), m_name);
  if (r.socket != socket || r.op != op) {
    diverge(std::string("the recording did a socket ") + socket_control_name(r.op) + " of socket " +
            std::to_string(r.socket) + ", the replay " + what);
  }
}

void ReplayingHostIO::socket_pause(SocketId socket, bool paused) {
  replay_control(socket, paused ? SocketControlRecord::Op::pause : SocketControlRecord::Op::resume);
}
void ReplayingHostIO::socket_shutdown(SocketId socket) {
  replay_control(socket, SocketControlRecord::Op::shutdown);
}
void ReplayingHostIO::socket_close(SocketId socket) {
  replay_control(socket, SocketControlRecord::Op::close);
}

u64 ReplayingHostIO::next_stop_icount() {
  const auto& ev = m_journal.events();
  m_next_async = std::max(m_next_async, m_next);
  while (m_next_async < ev.size() && !stops_loop(ev[m_next_async].kind)) ++m_next_async;
  const u64 now = icount();
  u64 stop = m_next_async < ev.size() ? ev[m_next_async].icount : kNever;
  // The recording stopped every poll_interval instructions to poll the
  // host; stopping at the same counts keeps every CPU slice identical.
  const u64 poll = m_journal.header().poll_interval;
  if (poll && now <= kNever - poll) stop = std::min(stop, now + poll);
  // A request or an idle the recording made here is still pending while
  // a later event is due now: only running on can settle it (or show the
  // divergence at the next boundary), never a zero-length slice.
  if (stop <= now && head() && !stops_loop(head()->kind) && head()->icount <= now) stop = now + 1;
  // An end the machine reaches by itself (a triple fault under -no-reboot
  // retires no instruction) is at this count too: the run has to go on for
  // the machine to get there; finish() checks where it ended.
  if (stop <= now && m_next_async < ev.size() && ev[m_next_async].kind == EventKind::end) stop = now + 1;
  return stop;
}

void ReplayingHostIO::check_digest(const ConsoleDigestRecord& d, const char* where) {
  if (d.channel >= m_consoles.size()) {
    diverge(std::string(where) + " has a digest for console channel " + std::to_string(d.channel) +
            ", which the machine never opened");
  }
  const ReplayCursor::ConsoleDigest& digest = m_console_digests[d.channel];
  const LiveConsoles::Digest mine{digest.total, XXH3_64bits_digest(&digest.state)};
  // Started at a keyframe, the hash covers only the bytes since: only the
  // counts compare (see start_at_keyframe).
  const bool counts_only = !m_digest_base.empty();
  if (mine.total != d.total || (!counts_only && mine.hash != d.hash)) {
    const std::string& name = m_consoles.spec(d.channel).name;
    diverge("console " + name + " (channel " + std::to_string(d.channel) +
            ") output differs: the recording had " + std::to_string(d.total) + " bytes (xxh3 " + hex(d.hash) +
            "), the replay " + std::to_string(mine.total) + " bytes (xxh3 " + hex(mine.hash) + ")");
  }
  ++m_digests;
}

bool ReplayingHostIO::boundary(InputSink& sink) {
  const u64 now = icount();
  while (const JournalEvent* e = head()) {
    if (e->icount < now)
      diverge("the journal has " + describe_event(*e) + ", which the replay passed without it");
    if (e->icount > now) break;
    if (e->kind == EventKind::console_input) {
      const ConsoleInputRecord in = decode_console_input(*e, m_name);
      ++m_next;
      sink.deliver_input(in.channel, in.bytes);
    } else if (e->kind == EventKind::socket_event) {
      const SocketEvent ev = decode_socket_event(*e, m_name);
      ++m_next;
      sink.deliver_socket_event(ev);
    } else if (e->kind == EventKind::console_digest) {
      check_digest(decode_console_digest(*e, m_name), "the journal");
      ++m_next;
    } else if (e->kind == EventKind::checkpoint) {
      const u64 recorded = decode_checkpoint(*e, m_name);
      const u64 actual = m_hasher ? m_hasher() : 0;
      if (recorded != actual) {
        diverge("machine state hash " + hex(actual) + " differs from the recording's checkpoint " +
                hex(recorded));
      }
      ++m_checkpoints;
      m_last_good_checkpoint = now;
      ++m_next;
    } else if (e->kind == EventKind::keyframe) {
      ++m_next;  // for replays that start here; this one runs through
    } else if (e->kind == EventKind::end) {
      // A recording stopped from outside (Ctrl-C) ends here. Any other end
      // the machine must reach by itself; finish() checks it.
      const u8 kind = decode_end(*e, m_name).kind;
      if (kind == static_cast<u8>(RunEnd::Kind::interrupted) ||
          kind == static_cast<u8>(RunEnd::Kind::journal_end)) {
        return false;
      }
      break;
    } else {
      break;  // a request or an idle at this count: not ours to take
    }
  }
  // The journal of an interrupted recording ends with its last event.
  return head() != nullptr || m_journal.has_end();
}

std::optional<u64> ReplayingHostIO::idle(std::optional<u64> deadline_ns) {
  const JournalEvent* e = head();
  if (!e || e->kind != EventKind::idle_advance || e->icount != icount()) {
    // A replay gone astray (a guest left waiting on a device that never
    // interrupts) can idle from timer to timer without retiring another
    // instruction: virtual time past the recording's end says so, where
    // the instruction count never would.
    if (deadline_ns && m_journal.has_end()) {
      if (!m_end_time_ns) m_end_time_ns = decode_end(*m_journal.end_event(), m_name).time_ns;
      if (*deadline_ns > *m_end_time_ns) {
        diverge("the replay idles to virtual time " + std::to_string(*deadline_ns) +
                " ns, past the recording's end at " + std::to_string(*m_end_time_ns) + " ns");
      }
    }
    return deadline_ns;
  }
  const IdleAdvanceRecord r = decode_idle_advance(*e, m_name);
  const u64 deadline = deadline_ns.value_or(kNever);
  // Without pacing the recording journals only idles with no deadline
  // (RecordingHostIO::idle): one with a deadline returned it at once. The
  // event then belongs to a later idle at this count; if none takes it,
  // boundary() reports the replay passing it.
  if (r.deadline_ns == kNever && deadline_ns) return deadline_ns;
  if (r.deadline_ns != deadline) {
    diverge("the recording idled with the next timer deadline at " + deadline_text(r.deadline_ns) +
            ", the replay at " + deadline_text(deadline));
  }
  ++m_next;
  return r.resume_ns;
}

void ReplayingHostIO::finish(const RunEnd& end) {
  const JournalEvent* e = head();
  const bool user_stop = end.kind == RunEnd::Kind::interrupted;
  if (!e) return;  // an interrupted recording's journal, replayed to its last event
  if (e->kind != EventKind::end || e->icount != end.icount) {
    if (user_stop) return;  // the replay itself was stopped (Ctrl-C): nothing to compare
    diverge("the run ended (" + std::string(end_kind_name(static_cast<u8>(end.kind))) + ", status " +
            std::to_string(end.status) + ") but the journal continues with " + describe_event(*e));
  }
  const EndRecord rec = decode_end(*e, m_name);
  ++m_next;
  const bool stopped_here =
      end.kind == RunEnd::Kind::journal_end && (rec.kind == static_cast<u8>(RunEnd::Kind::interrupted) ||
                                                rec.kind == static_cast<u8>(RunEnd::Kind::journal_end));
  if (!stopped_here && (rec.kind != static_cast<u8>(end.kind) || rec.status != end.status)) {
    diverge("the run ended (" + std::string(end_kind_name(static_cast<u8>(end.kind))) + ", status " +
            std::to_string(end.status) + ") where the recording ended (" + end_kind_name(rec.kind) +
            ", status " + std::to_string(rec.status) + ")");
  }
  if (rec.time_ns != end.time_ns) {
    diverge("the run ended at virtual time " + std::to_string(end.time_ns) + " ns, the recording at " +
            std::to_string(rec.time_ns) + " ns");
  }
  for (const ConsoleDigestRecord& d : rec.digests) check_digest(d, "the end event");
  if (rec.digests.size() != m_consoles.size()) {
    diverge("the recording had " + std::to_string(rec.digests.size()) + " consoles at the end, the replay " +
            std::to_string(m_consoles.size()));
  }
  if (rec.state_hash != end.state_hash) {
    diverge("final machine state hash " + hex(end.state_hash) + " differs from the recording's " +
            hex(rec.state_hash));
  }
  m_recorded_end = rec;
}

}  // namespace reel
