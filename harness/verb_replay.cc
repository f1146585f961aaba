#include <cstdio>

#include "core/exit_status.h"
#include "harness/verbs.h"

namespace reel {

int verb_replay(const std::vector<std::string>&) {
  std::fputs("reel replay: not built yet\n", stderr);
  return kExitInternal;
}

}  // namespace reel
