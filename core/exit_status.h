#pragma once

namespace reel {

// Process exit statuses of reel itself. A guest's isa-debug-exit write of V
// exits with (V << 1) | 1, which is always odd, so reel's own are even.
inline constexpr int kExitOk = 0;
inline constexpr int kExitBadInput = 2;     // bad option, missing or malformed file, bad journal
inline constexpr int kExitDivergence = 4;   // replay disagreed with the journal
inline constexpr int kExitInternal = 6;     // a bug in reel
inline constexpr int kExitInterrupted = 130;  // Ctrl-C, as a shell reports SIGINT

}  // namespace reel
