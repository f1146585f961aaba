// Divergence reports: state dumps flattened to field paths, perturbation
// parsing, and `reel replay --perturb=...` of a recorded guest session
// reported at exactly the perturbed instruction count with the field named.

#include "harness/divergence.h"

#include <gtest/gtest.h>

#include "harness/disassembler.h"
#include "harness/session.h"
#include "replay/journal.h"
#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

TEST(FlattenJson, NestedObjectsAndArraysBecomePaths) {
  const FlatState f = flatten_json(
      R"({"cpu": {"eax": 1, "cs": {"base": 0}}, "devices": {"ne2000.0": {"isr": 17, "mac": [82, 84]}},)"
      R"( "name": "a\"b", "ok": true, "none": null, "neg": -3})");
  EXPECT_EQ(f.size(), 9u);
  EXPECT_EQ(f.at("cpu.eax"), "1");
  EXPECT_EQ(f.at("cpu.cs.base"), "0");
  EXPECT_EQ(f.at("devices.ne2000.0.isr"), "17");
  EXPECT_EQ(f.at("devices.ne2000.0.mac[1]"), "84");
  EXPECT_EQ(f.at("name"), "\"a\"b\"");
  EXPECT_EQ(f.at("ok"), "true");
  EXPECT_EQ(f.at("neg"), "-3");
}

TEST(FlattenJson, MalformedTextThrows) {
  EXPECT_THROW(flatten_json(R"({"a": )"), std::runtime_error);
  EXPECT_THROW(flatten_json(R"({"a": 1} x)"), std::runtime_error);
  EXPECT_THROW(flatten_json(R"({"a" 1})"), std::runtime_error);
  EXPECT_THROW(flatten_json(std::string(1000, '[')), std::runtime_error);
}

TEST(DiffStates, NamesEachDifferingFieldByPath) {
  const FlatState a = flatten_json(R"({"devices": {"ne2000.0": {"isr": 1, "imr": 0}}, "only_a": 5})");
  const FlatState b = flatten_json(R"({"devices": {"ne2000.0": {"isr": 17, "imr": 0}}, "only_b": 6})");
  const std::vector<FieldChange> d = diff_states(a, b);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(format_change(d[0]), "devices.ne2000.0.isr: 0x01 -> 0x11");
  EXPECT_EQ(format_change(d[1]), "only_a: 0x05 -> absent");
  EXPECT_EQ(format_change(d[2]), "only_b: absent -> 0x06");
}

TEST(DiffRam, NamesEachDifferingByteByAddress) {
  GuestMemory a(1u << 16), b(1u << 16);
  const u8 one = 0x10;
  b.write(0x1234, {&one, 1});
  const std::vector<FieldChange> d = diff_ram(a, b, 8);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(format_change(d[0]), "ram[0x00001234]: 0x00 -> 0x10");
}

TEST(Perturbation, ParsesEachForm) {
  const Perturbation r = parse_perturbation("3000:ram:0x200000:3");
  EXPECT_EQ(r.icount, 3000u);
  EXPECT_EQ(r.kind, Perturbation::Kind::ram_bit);
  EXPECT_EQ(r.address, 0x200000u);
  EXPECT_EQ(r.bit, 3u);
  const Perturbation g = parse_perturbation("0x10:reg:esp:31");
  EXPECT_EQ(g.icount, 16u);
  EXPECT_EQ(g.reg, "esp");
  EXPECT_EQ(g.bit, 31u);
  const Perturbation p = parse_perturbation("5:port:0x3ff:0x5a");
  EXPECT_EQ(p.kind, Perturbation::Kind::port_write);
  EXPECT_EQ(p.address, 0x3ffu);
  EXPECT_EQ(p.value, 0x5au);
  EXPECT_EQ(describe_perturbation(r), "flip bit 3 of ram[0x00200000] at icount 3000");
}

TEST(Perturbation, RejectsBadText) {
  for (const char* bad : {"", "1:ram:0x10", "x:ram:0:0", "1:ram:0:8", "1:reg:xyz:0", "1:reg:eax:32",
                          "1:port:0x10000:0", "1:port:1:256", "1:disk:0:0", "1:ram:0x:1"}) {
    EXPECT_THROW(parse_perturbation(bad), BadInput) << bad;
  }
}

std::string record_echo(const std::string& name) {
  const std::string journal = scratch_dir() + "/" + name;
  const ProcessResult r = run_reel({"record", "-o", journal, "-seed", "0x1234", "-checkpoint-interval", "500",
                                    "-rtc", "base=2020-01-01T00:00:00", "-kernel", guest_path("echo"),
                                    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"},
                                   "hello\nquit\n");
  EXPECT_EQ(r.status, 1) << r.err;
  return journal;
}

TEST(PerturbedReplay, RamBitIsReportedAtItsInstructionCount) {
  const std::string j = record_echo("perturb-ram.reel");
  const ProcessResult r = run_reel({"replay", j, "--perturb=3000:ram:0x200000:3"});
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_NE(r.err.find("replay diverged at icount 3500"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("divergence interval: icount 3000 .. 3500"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the diverged run was the odd one"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("first difference at icount 3000 (states equal at icount 2999)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("memory ram[0x00200000]: 0x08 -> 0x00"), std::string::npos) << r.err;
  // Capstone text of the instruction before it, with its address.
  EXPECT_NE(r.err.find("last instruction before it: icount 2999 at 0x00"), std::string::npos) << r.err;
}

TEST(PerturbedReplay, RegisterAndDeviceFieldsAreNamed) {
  const std::string j = record_echo("perturb-reg.reel");
  const ProcessResult reg = run_reel({"replay", j, "--perturb=2222:reg:esp:2"});
  EXPECT_EQ(reg.status, 4) << reg.err;
  EXPECT_NE(reg.err.find("first difference at icount 2222 "), std::string::npos) << reg.err;
  EXPECT_NE(reg.err.find("register cpu.esp: "), std::string::npos) << reg.err;
  // The UART's scratch register: a device register with no side effects.
  const ProcessResult dev = run_reel({"replay", j, "--perturb=4000:port:0x3ff:0x5a"});
  EXPECT_EQ(dev.status, 4) << dev.err;
  EXPECT_NE(dev.err.find("first difference at icount 4000 "), std::string::npos) << dev.err;
  EXPECT_NE(dev.err.find("field devices.uart.0.scr: 0x5a -> 0x00"), std::string::npos) << dev.err;
}

TEST(PerturbedReplay, NetworkCardRegisterIsNamedByItsPath) {
  // dhcpping on the default PCI NE2000 and user network. Clearing the
  // card's interrupt mask leaves the guest waiting for a frame forever; the
  // replay must still end (virtual time runs past the recording's end) and
  // name the register.
  const std::string j = scratch_dir() + "/perturb-ne2000.reel";
  const ProcessResult rec = run_reel({"record", "-o", j, "-seed", "9", "-rtc", "base=2020-01-01T00:00:00",
                                      "-kernel", guest_path("dhcpping"), "-serial", "stdio", "-device",
                                      "isa-debug-exit,iobase=0xf4,iosize=0x04"});
  ASSERT_EQ(rec.status, 1) << rec.err;
  const ProcessResult r = run_reel({"replay", j, "--perturb=50000:port:0xc00f:0x00"});
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_NE(r.err.find("first difference at icount 50000 "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("field devices.ne2k_pci.0.imr: 0x00 -> "), std::string::npos) << r.err;
}

TEST(PerturbedReplay, UnperturbedReplayPassesAndBadPerturbationIsRefused) {
  const std::string j = record_echo("perturb-none.reel");
  EXPECT_EQ(run_reel({"replay", j}).status, 1);
  const ProcessResult bad = run_reel({"replay", j, "--perturb=12:ram:zz:1"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--perturb=12:ram:zz:1"), std::string::npos) << bad.err;
}

TEST(ReplayRun, PausesAtExactCountsAndLocatesAPerturbation) {
  const std::string j = record_echo("replay-run.reel");
  const JournalReader journal = JournalReader::open(j, {});
  ReplayRun run(journal, j);
  ASSERT_TRUE(run.run_to(1234));
  EXPECT_EQ(run.icount(), 1234u);
  const FlatState f = flat_state(run.machine());
  EXPECT_EQ(f.count("cpu.eax"), 1u);
  EXPECT_EQ(f.count("devices.uart.0.scr"), 1u);
  ASSERT_TRUE(run.run_to(1235));
  EXPECT_EQ(run.icount(), 1235u);
  // Runs to its end without diverging from its journal.
  EXPECT_FALSE(run.run_to(kNever));
  EXPECT_FALSE(run.divergence().has_value()) << *run.divergence();
  ASSERT_TRUE(run.end().has_value());
  EXPECT_EQ(run.end()->status, 1);

  Perturbation p = parse_perturbation("5000:reg:edi:0");
  Disassembler dis;
  const auto d =
      locate_first_difference([&] { return std::make_unique<ReplayRun>(journal, j, p); },
                              [&] { return std::make_unique<ReplayRun>(journal, j); }, 0, 6000, dis);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->differ_icount, 5000u);
  EXPECT_EQ(d->equal_icount, 4999u);
  EXPECT_TRUE(d->has_instruction);
  EXPECT_FALSE(d->disassembly.empty());
  ASSERT_EQ(d->registers.size(), 1u);
  EXPECT_EQ(d->registers[0].path, "cpu.edi");
  // Identical runs never differ.
  EXPECT_FALSE(locate_first_difference([&] { return std::make_unique<ReplayRun>(journal, j); },
                                       [&] { return std::make_unique<ReplayRun>(journal, j); }, 0, 0, dis)
                   .has_value());
}

TEST(ReplayDivergenceReport, DeterministicDivergenceListsTheIntervalEvents) {
  // A checkpoint hash edited in the journal: every replay of it diverges
  // there, so the report says so and lists the interval's events.
  const std::string src = record_echo("deterministic.reel");
  const JournalReader in = JournalReader::open(src, {});
  const std::string out = scratch_dir() + "/deterministic-edited.reel";
  u64 edited_at = 0;
  {
    JournalWriter w(out, in.header());
    for (JournalEvent e : in.events()) {
      if (e.kind == EventKind::checkpoint && e.icount == 2000) {
        e.payload[0] ^= 1;
        edited_at = e.icount;
      }
      w.append(e.kind, e.icount, e.payload);
    }
    w.close();
  }
  ASSERT_EQ(edited_at, 2000u);
  const ProcessResult r = run_reel({"replay", out});
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_NE(r.err.find("divergence interval: icount 1500 .. 2000"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("diverges identically: the divergence is deterministic in this build"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("checkpoint at icount 2000"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace reel::test
