#include <cstdio>

int main() {
  std::puts("reel: placeholder");
  return 0;
}
