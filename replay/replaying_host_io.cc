#include "replay/replaying_host_io.h"

#include <xxhash.h>

#include <cinttypes>
#include <cstdio>

#include "core/virtual_clock.h"

namespace reel {

namespace {
const char* kind_name(u8 kind) {
  static const char* const kNames[] = {"guest_exit", "shutdown", "halted", "interrupted", "journal_end"};
  return kind < 5 ? kNames[kind] : "unknown";
}

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}
}  // namespace

ReplayingHostIO::ReplayingHostIO(const JournalReader& journal, std::string journal_name)
    : m_journal(journal), m_name(std::move(journal_name)), m_output(LiveHostIO::Options{false, kNever}) {}

ReplayingHostIO::~ReplayingHostIO() = default;

void ReplayingHostIO::attach(const VirtualClock* clock, std::function<u64()> state_hasher) {
  m_clock = clock;
  m_hasher = std::move(state_hasher);
}

const JournalEvent* ReplayingHostIO::head() const {
  const auto& ev = m_journal.events();
  return m_next < ev.size() ? &ev[m_next] : nullptr;
}

std::string ReplayingHostIO::describe(const JournalEvent& e) const {
  return std::string(event_kind_name(e.kind)) + " at icount " + std::to_string(e.icount);
}

void ReplayingHostIO::diverge(const std::string& what) const {
  throw ReplayDivergence(m_name + ": replay diverged at icount " + std::to_string(m_clock ? m_clock->icount() : 0) +
                         ": " + what);
}

const JournalEvent& ReplayingHostIO::expect(EventKind kind, const char* request) {
  const JournalEvent* e = head();
  const u64 now = m_clock ? m_clock->icount() : 0;
  if (!e) diverge(std::string("the machine made a request (") + request + ") the journal does not have");
  if (e->kind != kind || e->icount != now) {
    diverge(std::string("the machine made a request (") + request + ") but the journal's next event is " +
            describe(*e));
  }
  ++m_next;
  return *e;
}

i64 ReplayingHostIO::host_time_ns() {
  const JournalEvent& e = expect(EventKind::host_time, "host_time");
  ByteReader r(e.payload, e.offset, m_name);
  return r.i64v();
}

HostFile ReplayingHostIO::load_input(const std::string& path, u64 size, u64 hash, const std::vector<u8>* embedded) {
  HostFile f;
  if (embedded) {
    f.ok = true;
    f.bytes = *embedded;
  } else {
    f = LiveHostIO::read_host_file(path);
    if (!f.ok && !path.empty() && path[0] != '/' && !m_journal.header().cwd.empty()) {
      // The recording ran elsewhere: try its working directory.
      f = LiveHostIO::read_host_file(m_journal.header().cwd + "/" + path);
    }
    if (!f.ok) throw InputFileError(path + ": input file of the recording is missing (" + f.error + ")");
  }
  if (f.bytes.size() != size || XXH3_64bits(f.bytes.data(), f.bytes.size()) != hash) {
    throw InputFileError(path + ": input file changed since the recording (size " + std::to_string(f.bytes.size()) +
                         ", recorded " + std::to_string(size) + ")");
  }
  return f;
}

HostFile ReplayingHostIO::read_file(const std::string& path) {
  const auto& inputs = m_journal.header().inputs;
  if (m_next_input < inputs.size()) {
    const InputFile& in = inputs[m_next_input];
    if (in.path != path) {
      diverge("the machine read " + path + " but the recording read " + in.path);
    }
    ++m_next_input;
    return load_input(path, in.size, in.hash, in.embedded ? &in.bytes : nullptr);
  }
  const JournalEvent& e = expect(EventKind::file_read, "file_read");
  ByteReader r(e.payload, e.offset, m_name);
  const std::string recorded_path = r.str();
  if (recorded_path != path) diverge("the machine read " + path + " but the recording read " + recorded_path);
  const bool ok = r.u8v() != 0;
  const u64 size = r.u64v();
  const u64 hash = r.u64v();
  std::string error = r.str();
  const bool embedded = r.u8v() != 0;
  std::vector<u8> bytes;
  if (embedded) bytes = r.bytes();
  if (!ok) {
    HostFile f;
    f.error = std::move(error);
    return f;
  }
  return load_input(path, size, hash, embedded ? &bytes : nullptr);
}

ChannelId ReplayingHostIO::open_console(const ConsoleSpec& spec) {
  const JournalEvent& e = expect(EventKind::console_open, "console_open");
  ConsoleSpec quiet = spec;
  quiet.wants_input = false;  // replay input comes from the journal only
  const ChannelId id = m_output.open_console(quiet);
  ByteReader r(e.payload, e.offset, m_name);
  const u32 recorded_id = r.u32v();
  const std::string name = r.str();
  if (recorded_id != id || name != spec.name) {
    diverge("console " + spec.name + " opened as channel " + std::to_string(id) + ", recorded " + name +
            " as channel " + std::to_string(recorded_id));
  }
  return id;
}

void ReplayingHostIO::console_write(ChannelId channel, std::span<const u8> bytes) {
  m_output.console_write(channel, bytes);
}

u64 ReplayingHostIO::next_stop_icount() {
  const auto& ev = m_journal.events();
  for (size_t i = m_next; i < ev.size(); ++i) {
    if (!is_synchronous(ev[i].kind) && ev[i].kind != EventKind::idle_advance) return ev[i].icount;
  }
  return kNever;
}

void ReplayingHostIO::check_digest(const JournalEvent& e) {
  ByteReader r(e.payload, e.offset, m_name);
  const u32 channel = r.u32v();
  const u64 total = r.u64v();
  const u64 hash = r.u64v();
  if (channel >= m_output.console_count()) diverge("console digest for unknown channel " + std::to_string(channel));
  const LiveHostIO::Digest d = m_output.console_digest(channel);
  if (d.total != total || d.hash != hash) {
    diverge("console output of channel " + std::to_string(channel) + " differs: " + std::to_string(d.total) +
            " bytes (hash " + hex(d.hash) + ") where the recording had " + std::to_string(total) + " bytes (hash " +
            hex(hash) + ")");
  }
}

bool ReplayingHostIO::boundary(InputSink& sink) {
  const u64 now = m_clock->icount();
  while (const JournalEvent* e = head()) {
    if (e->icount < now) diverge("the recording had " + describe(*e) + ", which the replay passed without");
    if (e->icount > now) break;
    if (e->kind == EventKind::console_input) {
      ByteReader r(e->payload, e->offset, m_name);
      const u32 channel = r.u32v();
      const std::span<const u8> bytes = r.rest();
      ++m_next;
      sink.deliver_input(channel, bytes);
    } else if (e->kind == EventKind::console_digest) {
      check_digest(*e);
      ++m_next;
    } else if (e->kind == EventKind::checkpoint) {
      ByteReader r(e->payload, e->offset, m_name);
      const u64 recorded = r.u64v();
      const u64 actual = m_hasher ? m_hasher() : 0;
      if (recorded != actual) {
        diverge("machine state hash " + hex(actual) + " differs from the recording's checkpoint " + hex(recorded));
      }
      ++m_checkpoints;
      ++m_next;
    } else if (e->kind == EventKind::end) {
      // A recording stopped from outside (Ctrl-C) ends here; any other end
      // the machine must reach by itself, and finish() checks it.
      return decode_end(*e, m_name).kind != static_cast<u8>(RunEnd::Kind::interrupted);
    } else {
      break;  // idle_advance or a synchronous request: not ours to take here
    }
  }
  // A journal cut short has no end record: the replay ends with its events.
  return head() != nullptr || m_journal.has_end();
}

std::optional<u64> ReplayingHostIO::idle(std::optional<u64> deadline_ns) {
  const JournalEvent* e = head();
  if (e && e->kind == EventKind::idle_advance && e->icount == m_clock->icount()) {
    ByteReader r(e->payload, e->offset, m_name);
    ++m_next;
    return r.u64v();
  }
  return deadline_ns;
}

void ReplayingHostIO::finish(const RunEnd& end) {
  while (const JournalEvent* e = head()) {
    if (e->kind != EventKind::console_digest || e->icount != end.icount) break;
    check_digest(*e);
    ++m_next;
  }
  const JournalEvent* e = head();
  if (!e) {
    if (m_journal.has_end()) diverge("the journal's end record was already passed");
    return;  // interrupted recording without an end record
  }
  if (e->kind != EventKind::end) {
    diverge("the replay ended, but the journal continues with " + describe(*e));
  }
  const EndRecord rec = decode_end(*e, m_name);
  ++m_next;
  const bool interrupted_here =
      rec.kind == static_cast<u8>(RunEnd::Kind::interrupted) && end.kind == RunEnd::Kind::journal_end;
  if (!interrupted_here && (rec.kind != static_cast<u8>(end.kind) || rec.status != end.status)) {
    diverge("the run ended (" + std::string(kind_name(static_cast<u8>(end.kind))) + ", status " +
            std::to_string(end.status) + ") where the recording ended (" + kind_name(rec.kind) + ", status " +
            std::to_string(rec.status) + ")");
  }
  if (rec.icount != end.icount) {
    diverge("the run ended at icount " + std::to_string(end.icount) + ", the recording at " +
            std::to_string(rec.icount));
  }
  if (rec.state_hash != end.state_hash) {
    diverge("final machine state hash " + hex(end.state_hash) + " differs from the recording's " +
            hex(rec.state_hash));
  }
  m_recorded_end = rec;
}

}  // namespace reel
