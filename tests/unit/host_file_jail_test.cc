// HostIO::read_file_under: the jail a TFTP root puts around guest-chosen
// names (absolute names, "..", symlinks out, directories, FIFOs), and its
// journal: recorded with the contents, replayed with the root deleted.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/virtual_clock.h"
#include "replay/journal.h"
#include "replay/live_host_io.h"
#include "replay/recording_host_io.h"
#include "replay/replaying_host_io.h"

namespace reel {
namespace {

namespace fs = std::filesystem;

std::vector<u8> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

void write_file(const fs::path& p, const std::string& contents) {
  std::ofstream out(p, std::ios::binary);
  out << contents;
}

// A fresh tree per test:
//   base/root/a.txt, root/sub/b.bin, root/link_in -> sub/b.bin,
//   root/link_out -> base/outside/secret, root/link_dir_out -> base/outside,
//   root/dangling -> nowhere, root/fifo, base/outside/secret, base/x,
//   base/root_link -> root.
class HostFileJail : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    base = fs::path(::testing::TempDir()) /
           (std::string("jail-") + info->name() + "-" + std::to_string(static_cast<long>(::getpid())));
    fs::remove_all(base);
    root = base / "root";
    fs::create_directories(root / "sub");
    fs::create_directories(base / "outside");
    write_file(root / "a.txt", "alpha");
    write_file(root / "sub" / "b.bin", std::string("b\0in\xff", 5));
    write_file(base / "outside" / "secret", "secret");
    write_file(base / "x", "x outside");
    fs::create_symlink("sub/b.bin", root / "link_in");
    fs::create_symlink(base / "outside" / "secret", root / "link_out");
    fs::create_symlink(base / "outside", root / "link_dir_out");
    fs::create_symlink("nowhere", root / "dangling");
    fs::create_directory_symlink(root, base / "root_link");
    ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0600), 0);
  }
  void TearDown() override { fs::remove_all(base); }

  HostFile read(const std::string& name) { return host.read_file_under(root.string(), name); }

  void expect_refused(const std::string& name, const std::string& why) {
    SCOPED_TRACE(name);
    const HostFile f = read(name);
    EXPECT_FALSE(f.ok);
    EXPECT_TRUE(f.refused);
    EXPECT_TRUE(f.bytes.empty());
    EXPECT_EQ(f.error, std::string(kHostFileRefusedPrefix) + why);
  }

  fs::path base;
  fs::path root;
  LiveHostIO host{LiveHostIO::Options{}};
};

TEST_F(HostFileJail, ReadsRegularFilesInsideTheRoot) {
  HostFile f = read("a.txt");
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_FALSE(f.refused);
  EXPECT_EQ(f.bytes, bytes_of("alpha"));
  f = read("sub/b.bin");
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.bytes, (std::vector<u8>{'b', 0, 'i', 'n', 0xff}));
  // Harmless spellings of names inside the root.
  EXPECT_EQ(read("./a.txt").bytes, bytes_of("alpha"));
  EXPECT_EQ(read("sub//b.bin").bytes.size(), 5u);
  // A symlink whose target stays inside the root is followed.
  f = read("link_in");
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.bytes.size(), 5u);
}

TEST_F(HostFileJail, DirectorySymlinksInsideAreFollowed) {
  fs::create_directory_symlink("sub", root / "alias");
  const HostFile f = read("alias/b.bin");
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.bytes.size(), 5u);
  // A file named like a directory is an error, not a refusal.
  EXPECT_FALSE(read("a.txt/").ok);
  EXPECT_FALSE(read("a.txt/").refused);
}

TEST_F(HostFileJail, RootGivenThroughASymlinkWorks) {
  const HostFile f = host.read_file_under((base / "root_link").string(), "sub/b.bin");
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.bytes.size(), 5u);
}

TEST_F(HostFileJail, RefusesAbsoluteNamesAndDotDot) {
  expect_refused("/etc/passwd", "absolute name");
  expect_refused("../x", "\"..\" in the name");
  expect_refused("a/../../x", "\"..\" in the name");
  // Even a ".." that would stay inside is refused, as libslirp does.
  expect_refused("sub/../a.txt", "\"..\" in the name");
  expect_refused("sub/..", "\"..\" in the name");
  expect_refused("..", "\"..\" in the name");
  expect_refused("", "empty name");
  expect_refused(std::string("a.txt\0../x", 10), "NUL in the name");
  // "..." and "..a" are ordinary names (missing here), not parent references.
  EXPECT_FALSE(read("...").refused);
  EXPECT_FALSE(read("..a").refused);
}

TEST_F(HostFileJail, RefusesSymlinksLeadingOutside) {
  expect_refused("link_out", "outside the root");
  expect_refused("link_dir_out/secret", "outside the root");
}

TEST_F(HostFileJail, ASiblingSharingTheRootsPrefixIsOutside) {
  // base/rootx starts with the characters of base/root but is not inside it.
  fs::create_directories(base / "rootx");
  write_file(base / "rootx" / "secret", "sibling");
  fs::create_symlink(base / "rootx" / "secret", root / "link_sibling");
  expect_refused("link_sibling", "outside the root");
}

TEST_F(HostFileJail, RefusesFilesOverTheCapBeforeReadingThem) {
  // Sparse: costs no disk, and the cap is checked on the size, not by reading.
  write_file(root / "huge", "");
  fs::resize_file(root / "huge", kMaxHostFileUnder + 1);
  expect_refused("huge", "larger than " + std::to_string(kMaxHostFileUnder) + " bytes");
}

TEST_F(HostFileJail, RefusesDirectoriesAndSpecialFiles) {
  expect_refused("sub", "not a regular file");
  expect_refused("sub/", "not a regular file");
  expect_refused(".", "not a regular file");
  // A FIFO would block a plain open(); the jail opens non-blocking and refuses it.
  expect_refused("fifo", "not a regular file");
}

TEST_F(HostFileJail, MissingFilesAreErrorsNotRefusals) {
  HostFile f = read("missing");
  EXPECT_FALSE(f.ok);
  EXPECT_FALSE(f.refused);
  EXPECT_EQ(f.error, "No such file or directory");
  f = read("dangling");
  EXPECT_FALSE(f.ok);
  EXPECT_FALSE(f.refused);
  f = host.read_file_under((base / "no-such-root").string(), "a.txt");
  EXPECT_FALSE(f.ok);
  EXPECT_FALSE(f.refused);
  EXPECT_NE(f.error.find("no-such-root"), std::string::npos) << f.error;
  f = host.read_file_under("", "a.txt");
  EXPECT_FALSE(f.ok);
  EXPECT_TRUE(f.refused);
}

// ------------------------------------------------------------ record/replay

TEST_F(HostFileJail, RecordedReadsReplayWithoutTheRoot) {
  const std::string journal = (base / "jail.reel").string();
  VirtualClock clock;
  {
    RecordingHostIO rec(journal, JournalHeader{}, LiveHostIO::Options{});
    rec.attach(&clock, [] { return u64{0}; });
    // set_embed_files is off: jailed reads embed their contents anyway.
    clock.set_icount(10);
    HostFile f = rec.read_file_under(root.string(), "a.txt");
    ASSERT_TRUE(f.ok) << f.error;
    clock.set_icount(20);
    f = rec.read_file_under(root.string(), "../x");
    EXPECT_TRUE(f.refused);
    f = rec.read_file_under(root.string(), "missing");
    EXPECT_FALSE(f.ok);
    clock.set_icount(30);
    f = rec.read_file_under(root.string(), "sub/b.bin");
    ASSERT_TRUE(f.ok) << f.error;
    RunEnd end;
    end.icount = 40;
    rec.finish(end);
  }
  // Keep the journal, lose every file it read.
  const fs::path kept = base.parent_path() / (base.filename().string() + ".reel");
  fs::rename(journal, kept);
  fs::remove_all(base);
  ASSERT_FALSE(fs::exists(root));

  const JournalReader j = JournalReader::open(kept.string(), {});
  EXPECT_TRUE(j.header().inputs.empty());
  ASSERT_EQ(j.count(EventKind::file_read), 4u);
  const FileReadRecord first = decode_file_read(j.events()[0], "j");
  EXPECT_EQ(first.path, "a.txt under " + root.string());
  EXPECT_TRUE(first.embedded);
  EXPECT_EQ(first.bytes, bytes_of("alpha"));
  const FileReadRecord refused = decode_file_read(j.events()[1], "j");
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.error, std::string(kHostFileRefusedPrefix) + "\"..\" in the name");

  VirtualClock replay_clock;
  ReplayingHostIO rep(j, "jail.reel");
  rep.attach(&replay_clock, [] { return u64{0}; });
  replay_clock.set_icount(10);
  HostFile f = rep.read_file_under(root.string(), "a.txt");
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.bytes, bytes_of("alpha"));
  replay_clock.set_icount(20);
  f = rep.read_file_under(root.string(), "../x");
  EXPECT_FALSE(f.ok);
  EXPECT_TRUE(f.refused);
  EXPECT_EQ(f.error, std::string(kHostFileRefusedPrefix) + "\"..\" in the name");
  f = rep.read_file_under(root.string(), "missing");
  EXPECT_FALSE(f.ok);
  EXPECT_FALSE(f.refused);
  EXPECT_EQ(f.error, "No such file or directory");
  replay_clock.set_icount(30);
  // The machine asks for another name than the recording read: divergence.
  try {
    rep.read_file_under(root.string(), "sub/c.bin");
    FAIL() << "no divergence";
  } catch (const ReplayDivergence& e) {
    EXPECT_EQ(std::string(e.what()),
              "jail.reel: replay diverged at icount 30: the journal expected a read of "
              "sub/b.bin under " +
                  root.string() + ", the machine read sub/c.bin under " + root.string())
        << e.what();
  }
  fs::remove(kept);
}

TEST_F(HostFileJail, PlainReadDoesNotMatchAJailedEvent) {
  const std::string journal = (base / "plain.reel").string();
  VirtualClock clock;
  {
    RecordingHostIO rec(journal, JournalHeader{}, LiveHostIO::Options{});
    rec.attach(&clock, [] { return u64{0}; });
    clock.set_icount(5);
    ASSERT_TRUE(rec.read_file_under(root.string(), "a.txt").ok);
    RunEnd end;
    end.icount = 5;
    rec.finish(end);
  }
  const JournalReader j = JournalReader::open(journal, {});
  ReplayingHostIO rep(j, "plain.reel");
  VirtualClock replay_clock;
  rep.attach(&replay_clock, [] { return u64{0}; });
  replay_clock.set_icount(5);
  // Reports name the jailed read whole.
  try {
    rep.host_time_ns();
    FAIL() << "no divergence";
  } catch (const ReplayDivergence& e) {
    EXPECT_NE(std::string(e.what()).find("file_read at icount 5 (a.txt under " + root.string() +
                                         "), the machine asked for host_time"),
              std::string::npos)
        << e.what();
  }
  // The same bytes by their full path are another request.
  try {
    rep.read_file((root / "a.txt").string());
    FAIL() << "no divergence";
  } catch (const ReplayDivergence& e) {
    EXPECT_NE(std::string(e.what()).find("the journal expected a read of a.txt under " + root.string() +
                                         ", the machine read " + (root / "a.txt").string()),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace reel
