#pragma once

#include <string>
#include <vector>

namespace reel {

// One function per verb, each in its own file. Each returns the process
// exit status; errors in the user's input print one line and return 2.
int verb_run(const std::vector<std::string>& args);
int verb_record(const std::vector<std::string>& args);
int verb_replay(const std::vector<std::string>& args);
int verb_info(const std::vector<std::string>& args);
int verb_diff(const std::vector<std::string>& args);
int verb_check(const std::vector<std::string>& args);

}  // namespace reel
