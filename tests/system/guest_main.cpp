// guest_main.cpp - the in-guest test runner, shared by every architecture's image.
//
// Runs each registered case whose arch matches this image and whose mode belongs to it, prints
// one machine-readable line per case (parsed by tools/matrix.py) and a closing
// "N passed, M failed, K skipped" line, then exits QEMU with the failure count as its status.
#include "guest.hpp"
#include "hpt_test.hpp"

namespace {

using hpt::guest::putc;

void puts_uart(const char* s) {
  while (*s) putc(*s++);
}

bool str_eq(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

// "4k" owns "4k", "4k-39" and "4k-48"; "" (any mode) belongs everywhere.
bool mode_belongs(const char* case_mode, const char* image_mode) {
  if (!*case_mode) return true;
  const char* m = image_mode;
  const char* c = case_mode;
  while (*m && *m == *c) ++m, ++c;
  return !*m && (*c == 0 || *c == '-');
}

}  // namespace

extern "C" {
using InitFn = void (*)();
extern InitFn __init_array_start[];  // NOLINT(bugprone-reserved-identifier): linker symbols
extern InitFn __init_array_end[];    // NOLINT(bugprone-reserved-identifier)
}

namespace hpt::guest {

[[noreturn]] void run_all() {
  hpt::g_out = &puts_uart;
  for (InitFn* f = __init_array_start; f != __init_array_end; ++f) (*f)();

  const char* arch = arch_name();
  const char* mode = mode_name();
  hpt::out("hugepte guest: arch=");
  hpt::out(arch);
  hpt::out(" mode=");
  hpt::out(mode);
  hpt::out("\n");

  unsigned passed = 0, failed = 0, skipped = 0;
  for (hpt::Case* c = hpt::g_cases; c; c = c->next) {
    if (*c->arch && !str_eq(c->arch, arch)) continue;
    if (!mode_belongs(c->mode, mode)) continue;
    hpt::Ctx ctx;
    c->fn(ctx);
    const char* status = ctx.failures ? "FAIL" : ctx.skip_reason ? "SKIP" : "PASS";
    (ctx.failures ? failed : ctx.skip_reason ? skipped : passed) += 1;
    hpt::out("CASE ");
    hpt::out(status);
    hpt::out(" arch=");
    hpt::out(arch);
    hpt::out(" mode=");
    hpt::out(mode);
    hpt::out(" group=");
    hpt::out(c->group);
    hpt::out(" name=");
    hpt::out(c->name);
    if (*c->mode) {
      hpt::out("/");
      hpt::out(c->mode);
    }
    if (!ctx.failures && ctx.skip_reason) {
      hpt::out(" reason=");
      hpt::out(ctx.skip_reason);
    }
    hpt::out("\n");
  }
  hpt::out_u64(passed);
  hpt::out(" passed, ");
  hpt::out_u64(failed);
  hpt::out(" failed, ");
  hpt::out_u64(skipped);
  hpt::out(" skipped\n");
  exit(static_cast<int>(failed > 100 ? 100 : failed));
}

}  // namespace hpt::guest
