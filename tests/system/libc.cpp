// libc.cpp - the few C runtime symbols a freestanding C++ image needs (the compiler may emit
// calls to mem* for aggregate copies and zeroing).
#include <cstddef>

extern "C" {

void* memset(void* dst, int c, std::size_t n) {
  auto* d = static_cast<volatile unsigned char*>(dst);  // volatile: keep clang from calling memset
  while (n--) *d++ = static_cast<unsigned char>(c);
  return dst;
}

void* memcpy(void* dst, const void* src, std::size_t n) {
  auto* d = static_cast<volatile unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  while (n--) *d++ = *s++;
  return dst;
}

void* memmove(void* dst, const void* src, std::size_t n) {
  auto* d = static_cast<volatile unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  if (d < s) {
    while (n--) *d++ = *s++;
  } else {
    while (n--) d[n] = s[n];
  }
  return dst;
}

int memcmp(const void* a, const void* b, std::size_t n) {
  const auto* x = static_cast<const unsigned char*>(a);
  const auto* y = static_cast<const unsigned char*>(b);
  for (; n; --n, ++x, ++y)
    if (*x != *y) return *x < *y ? -1 : 1;
  return 0;
}

void* __dso_handle = nullptr;  // NOLINT(bugprone-reserved-identifier): ABI symbol
int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }  // images never return
void __cxa_pure_virtual() { for (;;) {} }
}
