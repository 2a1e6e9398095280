// hpt_test.hpp - one tiny test vocabulary for all three rings.
//
// Shared cases (tests/shared/*.cpp) are written once with HPT_CASE / HPT_FORMAT_CASE and
// HPT_EXPECT*. On the host and under qemu-user they are registered as GoogleTest tests
// (tests/host/shared_main.cpp); inside bare-metal images the guest runner executes them and
// prints one line per case. Freestanding: no heap, no exceptions, no iostream.
#pragma once

#include <cstdint>

#include "hugepte/format.hpp"

namespace hpt {

using OutFn = void (*)(const char*);

// Where text goes: stdout on the host, the UART in a guest.
inline OutFn g_out = nullptr;
inline void out(const char* s) {
  if (g_out) g_out(s);
}

inline void out_u64(std::uint64_t v, int base = 10) {
  char buf[24];
  int n = 0;
  do {
    unsigned d = static_cast<unsigned>(v % static_cast<unsigned>(base));
    buf[n++] = static_cast<char>(d < 10 ? '0' + d : 'a' + d - 10);
    v /= static_cast<unsigned>(base);
  } while (v);
  char s[26];
  int k = 0;
  if (base == 16) {
    s[k++] = '0';
    s[k++] = 'x';
  }
  while (n) s[k++] = buf[--n];
  s[k] = 0;
  out(s);
}

// Deterministic generator (splitmix64): any seed works, the same sequence on every ring, so a
// failing seed reproduces on the host, under qemu-user and in a guest alike.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

struct Ctx {
  unsigned failures = 0;
  unsigned checks = 0;
  const char* skip_reason = nullptr;

  void fail_at(const char* file, int line, const char* what) {
    ++failures;
    out("    check failed: ");
    out(what);
    out(" at ");
    out(file);
    out(":");
    out_u64(static_cast<std::uint64_t>(line));
    out("\n");
  }
  bool expect(bool ok, const char* what, const char* file, int line) {
    ++checks;
    if (!ok) fail_at(file, line, what);
    return ok;
  }
  template <class A, class B>
  bool expect_eq(const A& a, const B& b, const char* what, const char* file, int line) {
    ++checks;
    if (a == b) return true;
    fail_at(file, line, what);
    if constexpr (requires { static_cast<std::uint64_t>(a); static_cast<std::uint64_t>(b); }) {
      out("      left  = ");
      out_u64(static_cast<std::uint64_t>(a), 16);
      out("\n      right = ");
      out_u64(static_cast<std::uint64_t>(b), 16);
      out("\n");
    }
    return false;
  }
};

using CaseFn = void (*)(Ctx&);

struct Case {
  const char* group;
  const char* name;
  const char* arch;  // "" for any
  const char* mode;  // "" for any
  CaseFn fn;
  Case* next;
};

// Registry as an intrusive list built by static constructors (the guests run .init_array).
inline Case* g_cases = nullptr;
inline Case* g_cases_tail = nullptr;

struct Registrar {
  Case c;
  Registrar(const char* group, const char* name, const char* arch, const char* mode, CaseFn fn)
      : c{group, name, arch, mode, fn, nullptr} {
    if (g_cases_tail)
      g_cases_tail->next = &c;
    else
      g_cases = &c;
    g_cases_tail = &c;
  }
};

// Register body<F> for every format in Fs, under F's arch and mode.
template <template <class> class Body, class... Fs>
struct FormatRegistrar {
  Registrar r[sizeof...(Fs)];
  FormatRegistrar(const char* group, const char* name)
      : r{Registrar(group, name, Fs::arch, Fs::mode, &Body<Fs>::run)...} {}
};

template <class... Fs>
using FormatList = hugepte::TypeList<Fs...>;

}  // namespace hpt

#define HPT_CAT2(a, b) a##b
#define HPT_CAT(a, b) HPT_CAT2(a, b)

// A case that does not depend on a format.
#define HPT_CASE(group, name)                                                            \
  static void hpt_case_##group##_##name(::hpt::Ctx& hpt_ctx);                            \
  static ::hpt::Registrar hpt_reg_##group##_##name(#group, #name, "", "",                \
                                                   &hpt_case_##group##_##name);          \
  static void hpt_case_##group##_##name([[maybe_unused]] ::hpt::Ctx& hpt_ctx)

// A case for one arch only (but any mode).
#define HPT_ARCH_CASE(arch, group, name)                                                 \
  static void hpt_case_##group##_##name(::hpt::Ctx& hpt_ctx);                            \
  static ::hpt::Registrar hpt_reg_##group##_##name(#group, #name, arch, "",              \
                                                   &hpt_case_##group##_##name);          \
  static void hpt_case_##group##_##name([[maybe_unused]] ::hpt::Ctx& hpt_ctx)

// A case typed over formats:
//   HPT_FORMAT_CASE(format, RoundTripsEveryFlag, X86Formats) { using F = Fmt; ... }
// where X86Formats is a hpt::FormatList<...>. Inside the body `Fmt` names the format.
#define HPT_FORMAT_CASE(group, name, list)                                               \
  template <class Fmt>                                                                   \
  struct hpt_body_##group##_##name {                                                     \
    static void run(::hpt::Ctx& hpt_ctx);                                                \
  };                                                                                     \
  static auto hpt_reg_##group##_##name =                                                 \
      ::hpt::detail_register<hpt_body_##group##_##name>(#group, #name, list{});          \
  template <class Fmt>                                                                   \
  void hpt_body_##group##_##name<Fmt>::run([[maybe_unused]] ::hpt::Ctx& hpt_ctx)

namespace hpt {
template <template <class> class Body, class... Fs>
FormatRegistrar<Body, Fs...>* detail_register(const char* group, const char* name,
                                              FormatList<Fs...>) {
  static FormatRegistrar<Body, Fs...> reg(group, name);
  return &reg;
}
}  // namespace hpt

#define HPT_EXPECT(cond) hpt_ctx.expect(static_cast<bool>(cond), #cond, __FILE__, __LINE__)
#define HPT_EXPECT_EQ(a, b) hpt_ctx.expect_eq((a), (b), #a " == " #b, __FILE__, __LINE__)
// Fatal variants end the case on failure.
#define HPT_ASSERT(cond) \
  do {                   \
    if (!HPT_EXPECT(cond)) return; \
  } while (0)
#define HPT_ASSERT_EQ(a, b) \
  do {                      \
    if (!HPT_EXPECT_EQ(a, b)) return; \
  } while (0)
#define HPT_SKIP(reason)             \
  do {                               \
    hpt_ctx.skip_reason = (reason);  \
    return;                          \
  } while (0)
