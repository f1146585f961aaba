// Random argument vectors into the QEMU-style option parser: it must either
// return options, throw OptionError, or throw HelpRequested (a `help` value
// such as `-machine help`, which reel answers by printing the list); never
// crash or throw anything else.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "harness/options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Arguments are NUL-separated in the input.
  std::vector<std::string> args;
  std::string current;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(data[i]));
    }
  }
  args.push_back(current);
  try {
    (void)reel::parse_machine_options(args);
  } catch (const reel::OptionError&) {
  } catch (const reel::HelpRequested&) {
  }
  for (const auto& a : args) {
    (void)reel::parse_suboptions(a);
  }
  return 0;
}
