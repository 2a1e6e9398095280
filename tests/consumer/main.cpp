// A user's program: only the installed headers and the exported CMake package.
#include <cstdio>

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"

int main() {
  static_assert(hugepte::mask(12, 51) == 0x000ffffffffff000ull);
  std::printf("hugepte consumer: %s\n", hugepte::err_name(hugepte::Err::enomem));
  return hugepte::err_name(hugepte::Err::enomem)[0] == 'E' ? 0 : 1;
}
