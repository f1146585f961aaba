#include <cstdio>

#include "core/exit_status.h"
#include "harness/verbs.h"

namespace reel {

int verb_run(const std::vector<std::string>&) {
  std::fputs("reel run: not built yet\n", stderr);
  return kExitInternal;
}

}  // namespace reel
