#include <cstdio>

#include "core/exit_status.h"
#include "harness/verbs.h"

namespace reel {

int verb_info(const std::vector<std::string>&) {
  std::fputs("reel info: not built yet\n", stderr);
  return kExitInternal;
}

}  // namespace reel
