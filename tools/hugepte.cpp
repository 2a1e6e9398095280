// hugepte - the command-line face of the library: decode one entry of any format.
//
//   hugepte decode --arch x86_64|arm64|riscv64 [--mode M] [--profile P] --level LEVEL [--json]
//   0xVALUE
//
// Everything it prints comes from the format's decode() (through the kernel profile's
// translation, arch/*/include/.../*_linux61.hpp); the tool only formats it.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "hugepte/arch/all.hpp"
#include "hugepte/arch/arm64_linux61.hpp"
#include "hugepte/arch/riscv_linux61.hpp"
#include "hugepte/arch/x86_linux61.hpp"
#include "hugepte/kernel.hpp"

namespace {

using hugepte::Entry;
using hugepte::Kind;

constexpr int kUsageError = 2;

const char* kDecodeHelp =
    "usage: hugepte decode --arch ARCH [--mode MODE] [--profile PROFILE] [--space SPACE] "
    "--level LEVEL [--json] VALUE\n"
    "\n"
    "Decode one raw page-table entry exactly as the architecture's MMU and Linux's\n"
    "software conventions read it (stage 2: as the MMU and KVM read it).\n"
    "\n"
    "  --arch ARCH    x86_64 | arm64 | riscv64\n"
    "  --mode MODE    paging mode of that architecture (default: the first listed)\n"
    "                 stage 1 (the CPU's own tables, Linux's conventions):\n"
    "                   x86_64:  4level 5level\n"
    "                   arm64:   4k-48 4k-39 16k-47 16k-36 16k-48 64k-48 64k-42\n"
    "                   riscv64: sv39 sv48 sv57\n"
    "                 stage 2 (the secondary MMU, KVM's conventions):\n"
    "                   x86_64:  ept4 ept5 (Intel EPT, A/D enabled) npt4 npt5 (AMD NPT)\n"
    "                   arm64:   s2-4k s2-16k s2-64k (40-bit IPA as KVM's default; -fwb:\n"
    "                            HCR_EL2.FWB's MemAttr encoding)\n"
    "                   riscv64: sv39x4 sv48x4 sv57x4 (G-stage)\n"
    "  --profile P    upstream (default) | linux-6.1: which kernel wrote the entry (its\n"
    "                 software bits and swap encodings; stage 1 only)\n"
    "  --space S      user (default) | kernel: whose page table holds the entry. A kernel\n"
    "                 entry with its valid bit clear is one set_memory_np (x86) or\n"
    "                 set_memory_valid(0) (arm64, riscv) made not present: it keeps its\n"
    "                 frame and attributes, and is no swap entry or PROT_NONE (stage 1 only)\n"
    "  --level LEVEL  pte | pmd | pud | p4d | pgd: the table level the entry sits in\n"
    "                 (pgd is always the root; a folded level name means the root)\n"
    "  --json         print one JSON object instead of a table\n"
    "  VALUE          the 64-bit entry, hex (0x...) or decimal\n"
    "\n"
    "JSON keys: stage (1|2), kind (none|table|leaf|protnone|swap|marker|locked|invalid),\n"
    "output_address,\n"
    "shift (log2 of what this entry maps), contiguous_shift (log2 of its group or null),\n"
    "read, write, exec, user, accessed, dirty, global (as the hardware enforces them),\n"
    "writable (Linux's logical write bit), memory_type, software {special, soft_dirty,\n"
    "uffd_wp}, swap {type, offset, exclusive, soft_dirty, uffd_wp} or null,\n"
    "marker {uffd_wp, poisoned, guard} or null, reason (why invalid, else null),\n"
    "profile, devmap (linux-6.1: _PAGE_DEVMAP / PTE_DEVMAP; upstream: null), space (user|kernel);\n"
    "stage 2 adds (null at stage 1): user_exec (the guest's user-mode fetches may execute:\n"
    "EPT XU with MBEC, arm64 XN[1:0]), ignore_pat (EPT IPAT), host_writable (KVM x86: the\n"
    "host mapping allows writes); writable is KVM's MMU-writable bit on x86, S2AP[1] or\n"
    "DBM on arm64. Kind locked is KVM's frozen SPTE (x86) or locked PTE (arm64).\n"
    "With --space kernel a not-present entry is kind not_present, with the fields it would\n"
    "have with its valid bit set.\n"
    "Exit status: 0 decoded, 2 bad usage or value.\n";

const char* kMainHelp =
    "usage: hugepte <command> [options]\n"
    "\n"
    "commands:\n"
    "  decode   decode one page-table entry (hugepte decode --help)\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "hugepte: %s (see hugepte decode --help)\n", msg.c_str());
  std::exit(kUsageError);
}

const char* default_mode(const std::string& arch) {
  if (arch == "x86_64") return "4level";
  if (arch == "arm64") return "4k-48";
  if (arch == "riscv64") return "sv39";
  return nullptr;
}

// Linux level names; the root is always pgd. Returns levels on a name that does not exist.
unsigned level_index(const std::string& name, unsigned levels) {
  if (name == "pgd") return levels - 1;
  static const char* const kNames[] = {"pte", "pmd", "pud", "p4d"};
  for (unsigned i = 0; i < 4; ++i)
    if (name == kNames[i]) return i < levels ? i : levels;
  return levels;
}

const char* swap_type_name(uint32_t type) {
  switch (type) {
    case hugepte::kSwpHwpoison: return "hwpoison";
    case hugepte::kSwpMigrationRead: return "migration-read";
    case hugepte::kSwpMigrationReadExclusive: return "migration-read-exclusive";
    case hugepte::kSwpMigrationWrite: return "migration-write";
    case hugepte::kSwpDeviceWrite: return "device-private-write";
    case hugepte::kSwpDeviceRead: return "device-private-read";
    case hugepte::kSwpDeviceExclusive: return "device-exclusive";
    case hugepte::kSwpPteMarker: return "pte-marker";
    default: return "swap";
  }
}

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

const char* tf(bool b) { return b ? "true" : "false"; }

bool has_address(Kind k) { return k == Kind::table || k == Kind::leaf || k == Kind::protnone; }
bool is_swapish(Kind k) { return k == Kind::swap || k == Kind::marker; }

// What the kernel profile adds to the entry: which profile, and 6.1's devmap bit; whose table
// holds it, and whether it is a kernel entry made not present (decoded with its valid bit set).
struct ProfileFacts {
  hugepte::Kernel kernel = hugepte::Kernel::upstream;
  bool devmap = false;
  bool kernel_space = false;
  bool not_present = false;
};

const char* kind_text(const Entry& e, const ProfileFacts& pf) {
  return pf.not_present ? "not_present" : hugepte::kind_name(e.kind);
}

template <class F>
void print_json(const Entry& e, uint64_t raw, unsigned level, const ProfileFacts& pf) {
  std::printf("{\"arch\": \"%s\", \"mode\": \"%s\", \"level\": \"%s\", \"raw\": \"%s\", ", F::arch,
              F::mode, hugepte::level_name(level, F::levels), hex(raw).c_str());
  std::printf("\"profile\": \"%s\", ", hugepte::kernel_name(pf.kernel));
  if (pf.kernel == hugepte::Kernel::upstream)
    std::printf("\"devmap\": null, ");
  else
    std::printf("\"devmap\": %s, ", tf(pf.devmap));
  std::printf("\"space\": \"%s\", ", pf.kernel_space ? "kernel" : "user");
  std::printf("\"stage\": %u, ", hugepte::stage_of<F>());
  std::printf("\"kind\": \"%s\", ", kind_text(e, pf));
  if (has_address(e.kind))
    std::printf("\"output_address\": \"%s\", ", hex(e.addr).c_str());
  else
    std::printf("\"output_address\": null, ");
  std::printf("\"shift\": %u, ", static_cast<unsigned>(e.shift));
  if (e.cont_shift)
    std::printf("\"contiguous_shift\": %u, ", static_cast<unsigned>(e.cont_shift));
  else
    std::printf("\"contiguous_shift\": null, ");
  std::printf("\"read\": %s, \"write\": %s, \"exec\": %s, \"user\": %s, ", tf(e.prot.read),
              tf(e.prot.write), tf(e.prot.exec), tf(e.prot.user));
  std::printf("\"accessed\": %s, \"dirty\": %s, \"global\": %s, \"writable\": %s, ", tf(e.accessed),
              tf(e.dirty), tf(e.global), tf(e.writable));
  if (e.kind == Kind::leaf || e.kind == Kind::protnone)
    std::printf("\"memory_type\": \"%s\", ", hugepte::memtype_name(e.mem));
  else
    std::printf("\"memory_type\": null, ");
  std::printf("\"software\": {\"special\": %s, \"soft_dirty\": %s, \"uffd_wp\": %s}, ",
              tf(e.soft.special), tf(e.soft.soft_dirty), tf(e.soft.uffd_wp));
  if (is_swapish(e.kind)) {
    std::printf(
        "\"swap\": {\"type\": %u, \"type_name\": \"%s\", \"offset\": \"%s\", \"exclusive\": %s, "
        "\"soft_dirty\": %s, \"uffd_wp\": %s}, ",
        e.swp.type, swap_type_name(e.swp.type), hex(e.swp.offset).c_str(), tf(e.swp.exclusive),
        tf(e.swp.soft_dirty), tf(e.swp.uffd_wp));
  } else {
    std::printf("\"swap\": null, ");
  }
  if (e.kind == Kind::marker) {
    std::printf("\"marker\": {\"uffd_wp\": %s, \"poisoned\": %s, \"guard\": %s}, ",
                tf(e.swp.offset & hugepte::kMarkerUffdWp),
                tf(e.swp.offset & hugepte::kMarkerPoisoned),
                tf(e.swp.offset & hugepte::kMarkerGuard));
  } else {
    std::printf("\"marker\": null, ");
  }
  if (hugepte::stage_of<F>() == 2 && e.kind == Kind::leaf)
    std::printf("\"user_exec\": %s, \"ignore_pat\": %s, \"host_writable\": %s, ",
                tf(e.s2.user_exec), tf(e.s2.ignore_pat), tf(e.s2.host_writable));
  else if (hugepte::stage_of<F>() == 2 && e.kind == Kind::table)
    std::printf("\"user_exec\": %s, \"ignore_pat\": null, \"host_writable\": null, ",
                tf(e.s2.user_exec));
  else
    std::printf("\"user_exec\": null, \"ignore_pat\": null, \"host_writable\": null, ");
  std::printf("\"other_bits\": \"%s\", ", hex(e.keep).c_str());
  if (e.kind == Kind::invalid)
    std::printf("\"reason\": \"%s\"}\n", hugepte::reason_name(e.reason));
  else
    std::printf("\"reason\": null}\n");
}

template <class F>
void print_table(const Entry& e, uint64_t raw, unsigned level, const ProfileFacts& pf) {
  auto row = [](const char* k, const std::string& v) { std::printf("  %-17s %s\n", k, v.c_str()); };
  std::printf("%s %s %s entry %s\n", F::arch, F::mode, hugepte::level_name(level, F::levels),
              hex(raw).c_str());
  if (pf.kernel != hugepte::Kernel::upstream) {
    row("written by", hugepte::kernel_name(pf.kernel));
    if (pf.devmap) row("devmap", "true (ZONE_DEVICE memory)");
  }
  if (pf.kernel_space) row("space", "kernel");
  if (hugepte::stage_of<F>() == 2) row("stage", "2 (secondary MMU)");
  row("kind", kind_text(e, pf));
  if (e.kind == Kind::locked) row("", "(KVM: a break-before-make in progress; walkers retry)");
  if (pf.not_present) row("", "(set_memory_np: the MMU ignores it; read with the valid bit set)");
  if (e.kind == Kind::invalid) row("reason", hugepte::reason_name(e.reason));
  row("maps (shift)", std::to_string(e.shift) + " (" + hex(uint64_t{1} << e.shift) + " bytes)");
  if (has_address(e.kind)) row("output address", hex(e.addr));
  if (e.cont_shift)
    row("contiguous group", std::to_string(e.cont_shift) + " (" + hex(uint64_t{1} << e.cont_shift) +
                                " bytes, " + std::to_string(1u << (e.cont_shift - e.shift)) +
                                " entries)");
  if (e.kind == Kind::leaf || e.kind == Kind::protnone) {
    constexpr bool s2 = hugepte::stage_of<F>() == 2;
    std::string p;
    p += e.prot.read ? 'r' : '-';
    p += e.prot.write ? 'w' : '-';
    p += e.prot.exec ? 'x' : '-';
    if (!s2) p += e.prot.user ? " user" : " kernel";
    row("hardware access", p);
    row(s2 ? "writable (kvm)" : "writable (linux)", tf(e.writable));
    row("accessed", tf(e.accessed));
    row("dirty", tf(e.dirty));
    if (!s2) row("global", tf(e.global));
    row("memory type", hugepte::memtype_name(e.mem));
    if (s2) {
      row("user exec", tf(e.s2.user_exec));
      row("ignore guest PAT", tf(e.s2.ignore_pat));
      row("host writable", tf(e.s2.host_writable));
    } else {
      row("special", tf(e.soft.special));
      row("soft-dirty", tf(e.soft.soft_dirty));
      row("uffd-wp", tf(e.soft.uffd_wp));
    }
  }
  if (is_swapish(e.kind)) {
    row("swap type", std::to_string(e.swp.type) + " (" + swap_type_name(e.swp.type) + ")");
    row("swap offset", hex(e.swp.offset));
    row("exclusive", tf(e.swp.exclusive));
    row("soft-dirty", tf(e.swp.soft_dirty));
    row("uffd-wp", tf(e.swp.uffd_wp));
  }
  if (e.kind == Kind::marker) {
    std::string m;
    if (e.swp.offset & hugepte::kMarkerUffdWp) m += "uffd-wp ";
    if (e.swp.offset & hugepte::kMarkerPoisoned) m += "poisoned ";
    if (e.swp.offset & hugepte::kMarkerGuard) m += "guard ";
    row("marker", m.empty() ? "(no flags)" : m);
  }
  if (e.keep) row("other bits", hex(e.keep));
}

struct DecodeArgs {
  std::string arch, mode, level;
  bool json = false;
  bool kernel_space = false;
  hugepte::Kernel kernel = hugepte::Kernel::upstream;
  uint64_t value = 0;
};

template <class F>
bool try_decode(const DecodeArgs& a) {
  if (a.arch != F::arch || a.mode != F::mode) return false;
  unsigned level = level_index(a.level, F::levels);
  if (level >= F::levels) {
    std::string names;
    for (unsigned l = F::levels; l-- > 0;)
      names += std::string(" ") + hugepte::level_name(l, F::levels);
    usage_error("level '" + a.level + "' does not exist in " + F::arch + " " + F::mode +
                " (levels:" + names + ")");
  }
  // A kernel profile spells the entry as upstream would, then the format decodes that.
  const F* f = nullptr;
  // A kernel entry made not present is read as the present entry it was (neither swap entries
  // nor PROT_NONE exist in kernel tables).
  ProfileFacts pf{a.kernel, false, a.kernel_space, false};
  uint64_t given = a.value;
  if constexpr (hugepte::stage_of<F>() == 2) {
    if (a.kernel_space || a.kernel != hugepte::Kernel::upstream)
      usage_error(std::string("--space and --profile describe stage-1 tables; ") + F::mode +
                  " is a stage-2 mode");
  } else if (a.kernel_space && given != 0 && !(given & valid_bit(f))) {
    given |= valid_bit(f);
    pf.not_present = true;
  }
  uint64_t raw = given, unknown = 0;
  if (a.kernel == hugepte::Kernel::linux_6_1) {
    if constexpr (requires { hugepte::linux61::to_upstream(f, raw, level); }) {
      raw = hugepte::linux61::to_upstream(f, given, level);
      pf.devmap = hugepte::linux61::devmap(f, given, level);
      if constexpr (requires { hugepte::linux61::unknown_bits(f, raw, level); })
        unknown = hugepte::linux61::unknown_bits(f, given, level);
    } else {
      usage_error(std::string("no linux-6.1 profile for ") + F::arch +
                  " (x86_64, arm64 and riscv64 have one)");
    }
  }
  Entry e = F::decode(raw, level);
  e.keep |= unknown;
  if (a.json)
    print_json<F>(e, a.value, level, pf);
  else
    print_table<F>(e, a.value, level, pf);
  return true;
}

template <class... Fs>
bool dispatch(const DecodeArgs& a, hugepte::TypeList<Fs...>) {
  return (try_decode<Fs>(a) || ...);
}

template <class... Fs>
std::string modes_of(const std::string& arch, hugepte::TypeList<Fs...>) {
  std::string s;
  ((s += arch == Fs::arch ? std::string(" ") + Fs::mode : std::string()), ...);
  return s;
}

uint64_t parse_value(const std::string& s) {
  if (s.empty() || s[0] == '-')
    usage_error("bad value '" + s + "': expected a 64-bit hex or decimal number");
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (errno || !end || *end)
    usage_error("bad value '" + s + "': expected a 64-bit hex or decimal number");
  return v;
}

int cmd_decode(int argc, char** argv) {
  DecodeArgs a;
  bool have_value = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    auto need = [&](const char* opt) -> std::string {
      if (i + 1 >= argc) usage_error(std::string("option ") + opt + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kDecodeHelp, stdout);
      return 0;
    } else if (arg == "--arch") {
      a.arch = need("--arch");
    } else if (arg == "--mode") {
      a.mode = need("--mode");
    } else if (arg == "--level") {
      a.level = need("--level");
    } else if (arg == "--profile") {
      const std::string p = need("--profile");
      if (p == "upstream") a.kernel = hugepte::Kernel::upstream;
      else if (p == "linux-6.1") a.kernel = hugepte::Kernel::linux_6_1;
      else usage_error("unknown profile '" + p + "' (upstream or linux-6.1)");
    } else if (arg == "--space") {
      const std::string s = need("--space");
      if (s == "user") a.kernel_space = false;
      else if (s == "kernel") a.kernel_space = true;
      else usage_error("unknown space '" + s + "' (user or kernel)");
    } else if (arg == "--json") {
      a.json = true;
    } else if (arg.size() > 1 && arg[0] == '-' && arg[1] == '-') {
      usage_error("unknown option '" + arg + "'");
    } else if (have_value) {
      usage_error("more than one value given ('" + arg + "')");
    } else {
      a.value = parse_value(arg);
      have_value = true;
    }
  }
  if (a.arch.empty()) usage_error("--arch is required (x86_64, arm64 or riscv64)");
  const char* def = default_mode(a.arch);
  if (!def) usage_error("unknown arch '" + a.arch + "' (x86_64, arm64 or riscv64)");
  if (a.mode.empty()) a.mode = def;
  if (a.level.empty()) usage_error("--level is required (pte, pmd, pud, p4d or pgd)");
  if (!have_value) usage_error("no entry value given");
  if (!dispatch(a, hugepte::AllFormats{}) && !dispatch(a, hugepte::AllStage2Formats{}))
    usage_error("unknown mode '" + a.mode + "' for " + a.arch + " (modes:" +
                modes_of(a.arch, hugepte::AllFormats{}) +
                modes_of(a.arch, hugepte::AllStage2Formats{}) + ")");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kMainHelp, argc < 2 ? stderr : stdout);
    return argc < 2 ? kUsageError : 0;
  }
  if (std::strcmp(argv[1], "decode") == 0) return cmd_decode(argc - 2, argv + 2);
  usage_error(std::string("unknown command '") + argv[1] + "'");
}
