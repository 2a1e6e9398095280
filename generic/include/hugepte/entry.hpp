// hugepte/entry.hpp - the vocabulary every layer speaks.
//
// Formats (arch/*) translate raw entries to and from these types; everything in generic/
// reasons only in these terms. Freestanding: no heap, no exceptions, no iostream.
#pragma once

#include <cstddef>
#include <stdint.h>  // uint64_t and friends, unqualified: the same names C code has

// For the few small functions on the hot path of every walk and map (the kernel's
// __always_inline): inlined, their callers' constant arguments fold away.
#define HUGEPTE_ALWAYS_INLINE [[gnu::always_inline]] inline

namespace hugepte {

// The library spells its integer types uint64_t, uint32_t, uint8_t: it declares no short
// aliases (u64, ...) of its own, so `using namespace hugepte` cannot clash with a C program's
// `typedef unsigned long long u64`.

// Errors are values with the kernel's names, so a porter recognises every return path.
enum class Err : uint8_t {
  ok = 0,
  enomem,
  eexist,
  einval,
  enoent,
  efault,
  eagain,
  ebusy,
  ehwpoison,
  erange,
  eperm,
  enospc,
  eopnotsupp,
  eio,
  ebadf,
};

constexpr const char* err_name(Err e) {
  switch (e) {
    case Err::ok: return "OK";
    case Err::enomem: return "ENOMEM";
    case Err::eexist: return "EEXIST";
    case Err::einval: return "EINVAL";
    case Err::enoent: return "ENOENT";
    case Err::efault: return "EFAULT";
    case Err::eagain: return "EAGAIN";
    case Err::ebusy: return "EBUSY";
    case Err::ehwpoison: return "EHWPOISON";
    case Err::erange: return "ERANGE";
    case Err::eperm: return "EPERM";
    case Err::enospc: return "ENOSPC";
    case Err::eopnotsupp: return "EOPNOTSUPP";
    case Err::eio: return "EIO";
    case Err::ebadf: return "EBADF";
  }
  return "E?";
}

// A value or an error. No exceptions anywhere: the same code runs in bare-metal guests.
template <class T>
struct Result {
  T value{};
  Err err = Err::ok;

  constexpr Result() = default;
  constexpr Result(T v)
      : value(v) {}  // NOLINT(google-explicit-constructor): reads like `return v;`
  constexpr Result(Err e)
      : err(e) {}  // NOLINT(google-explicit-constructor): reads like `return Err::einval;`
  constexpr bool ok() const { return err == Err::ok; }
  constexpr explicit operator bool() const { return ok(); }
};

// log2 helpers: sizes are shifts everywhere, never magic constants.
constexpr uint64_t bit(unsigned n) { return uint64_t{1} << n; }
constexpr uint64_t mask(unsigned lo, unsigned hi) {  // bits [lo, hi] inclusive
  return (hi >= 63 ? ~uint64_t{0} : (bit(hi + 1) - 1)) & ~(bit(lo) - 1);
}
constexpr uint64_t size_of_shift(unsigned shift) { return bit(shift); }
constexpr bool aligned(uint64_t v, unsigned shift) { return (v & (bit(shift) - 1)) == 0; }
constexpr uint64_t align_down(uint64_t v, unsigned shift) { return v & ~(bit(shift) - 1); }
constexpr uint64_t field(uint64_t raw, unsigned lo, unsigned hi) {
  return (raw & mask(lo, hi)) >> lo;
}
constexpr uint64_t put_field(uint64_t raw, unsigned lo, unsigned hi, uint64_t v) {
  return (raw & ~mask(lo, hi)) | ((v << lo) & mask(lo, hi));
}

// Access permissions, as the hardware enforces them for this entry.
struct Prot {
  bool read = false;
  bool write = false;
  bool exec = false;
  bool user = false;
  constexpr bool operator==(const Prot&) const = default;
};
inline constexpr Prot kProtNone{};
inline constexpr Prot kProtR{true, false, false, false};
inline constexpr Prot kProtRW{true, true, false, false};
inline constexpr Prot kProtRX{true, false, true, false};
inline constexpr Prot kProtRWX{true, true, true, false};

// Memory type, reduced to what all three architectures can name. A format maps each to its
// own attribute (x86 PAT index under Linux's PAT programming, arm64 AttrIndx under Linux's MAIR,
// riscv Svpbmt) and rejects one it cannot express.
enum class MemType : uint8_t {
  normal,         // write-back cacheable (x86 WB, arm64 Normal WB, riscv PMA)
  write_through,  // x86 WT, arm64 Normal WT
  noncacheable,   // x86 WC, arm64 Normal-NC, riscv NC
  device,         // x86 UC, arm64 Device-nGnRnE, riscv IO
  device_nGnRE,   // arm64 Device-nGnRE (x86 UC-)
  write_protect,  // x86 WP
  tagged,         // arm64 Normal Tagged (MTE)
};

constexpr const char* memtype_name(MemType m) {
  switch (m) {
    case MemType::normal: return "normal";
    case MemType::write_through: return "write-through";
    case MemType::noncacheable: return "non-cacheable";
    case MemType::device: return "device";
    case MemType::device_nGnRE: return "device-nGnRE";
    case MemType::write_protect: return "write-protect";
    case MemType::tagged: return "tagged";
  }
  return "?";
}

// What one raw entry is, under the hardware rules plus Linux's software conventions.
enum class Kind : uint8_t {
  none,      // empty slot
  table,     // points to the next-level table
  leaf,      // translates (page, block, or one sub-entry of a contiguous group)
  protnone,  // Linux PROT_NONE: present to software, invalid to hardware
  swap,      // non-present swap-format entry (swap, migration, hwpoison, device)
  marker,    // PTE marker: a swap-format entry of the marker type
  locked,    // a break-before-make in progress (KVM's frozen SPTE on x86, its locked invalid PTE
             // on arm64 stage 2): invalid to the hardware; a software walker that meets it must
             // not change it and retries
  invalid,   // the hardware would raise a fault that is not a plain translation fault (or the
             // encoding is reserved); `reason` says why
};

constexpr const char* kind_name(Kind k) {
  switch (k) {
    case Kind::none: return "none";
    case Kind::table: return "table";
    case Kind::leaf: return "leaf";
    case Kind::protnone: return "protnone";
    case Kind::swap: return "swap";
    case Kind::marker: return "marker";
    case Kind::locked: return "locked";
    case Kind::invalid: return "invalid";
  }
  return "?";
}

// Why an entry is invalid (Kind::invalid) or why an encode was refused.
enum class Reason : uint8_t {
  none,
  reserved_bits,         // a bit the manual reserves (must be zero) is set
  reserved_large_page,   // the page-size bit set at a level that cannot hold a page there
  misaligned_output,     // large leaf / superpage whose output address is not aligned to its size
  leaf_not_allowed,      // this level cannot hold a leaf
  reserved_descriptor,   // a descriptor type the manual reserves at this level (behaves as invalid)
  write_without_read,    // write permission without read, a reserved combination
  reserved_memory_type,  // a memory-type encoding the manual reserves
  reserved_group_encoding,  // a contiguous-group encoding (size pattern, level) the format does not
                            // define
  extension_absent,         // the encoding needs a feature this format instance lacks
  table_not_allowed,        // this level cannot point to a table (leaf level)
  output_beyond_pa,         // output address above the format's PA width
  bad_swap,                 // swap type/offset beyond the format's fields
  unrepresentable,          // the vocabulary value has no encoding in this format
  user_access_required,     // U=0 at stage 2 where every access counts as a user access (AMD
                            // NPT, riscv G-stage): every access through it faults
};

constexpr const char* reason_name(Reason r) {
  switch (r) {
    case Reason::none: return "none";
    case Reason::reserved_bits: return "reserved bit set";
    case Reason::reserved_large_page: return "page size bit set where the level cannot map a page";
    case Reason::misaligned_output: return "output address not aligned to the page size";
    case Reason::leaf_not_allowed: return "this level cannot hold a block/leaf";
    case Reason::reserved_descriptor: return "reserved descriptor type at this level";
    case Reason::write_without_read: return "write without read is reserved";
    case Reason::reserved_memory_type: return "reserved memory type";
    case Reason::reserved_group_encoding: return "contiguous group encoding not defined";
    case Reason::extension_absent: return "needs an extension this mode lacks";
    case Reason::table_not_allowed: return "this level cannot point to a table";
    case Reason::output_beyond_pa: return "output address beyond the physical address width";
    case Reason::bad_swap: return "swap type or offset out of range";
    case Reason::unrepresentable: return "not representable in this format";
    case Reason::user_access_required:
      return "U clear where every stage-2 access is a user access";
  }
  return "?";
}

// Software bits Linux keeps in present entries (not all formats have all of them).
struct Soft {
  bool special = false;
  bool soft_dirty = false;
  bool uffd_wp = false;
  constexpr bool operator==(const Soft&) const = default;
};

// What only a stage-2 (secondary-MMU) format stores: every stage-2 format fills these fields
// for its leaves, every stage-1 format leaves them at their defaults (and refuses anything else).
struct Stage2 {
  bool user_exec = false;      // the guest's user-mode fetches may execute (EPT XU with MBEC,
                               // arm64 XN[1:0]); equal to prot.exec where the format has no split
  bool ignore_pat = false;     // EPT IPAT: the EPT memory type wins over the guest's PAT
  bool host_writable = false;  // KVM x86: the host mapping (VMA, memslot) allows writes
  constexpr bool operator==(const Stage2&) const = default;
};

// Swap-format (non-present) entries: Linux's (type, offset) plus the per-entry flag bits.
// MAX_SWAPFILES_SHIFT is 5; the top type values are reserved for special entries, with the
// marker type last.
inline constexpr unsigned kSwapTypeBits = 5;
inline constexpr uint32_t kSwpHwpoison =
    24;  // MAX_SWAPFILES with 3 device + 3 migration + 1 + 1 reserved
inline constexpr uint32_t kSwpMigrationRead = 25;
inline constexpr uint32_t kSwpMigrationReadExclusive = 26;
inline constexpr uint32_t kSwpMigrationWrite = 27;
inline constexpr uint32_t kSwpDeviceWrite = 28;
inline constexpr uint32_t kSwpDeviceRead = 29;
inline constexpr uint32_t kSwpDeviceExclusive = 30;
inline constexpr uint32_t kSwpPteMarker = 31;
inline constexpr uint32_t kMaxSwapFiles = kSwpHwpoison;

// PTE marker flags, kept in the offset of a marker-type swap entry.
inline constexpr uint64_t kMarkerUffdWp = bit(0);
inline constexpr uint64_t kMarkerPoisoned = bit(1);
inline constexpr uint64_t kMarkerGuard = bit(2);

struct Swap {
  uint32_t type = 0;
  uint64_t offset = 0;  // swap slot; a PFN for migration/hwpoison; marker flags for markers
  bool exclusive = false;
  bool soft_dirty = false;
  bool uffd_wp = false;
  constexpr bool operator==(const Swap&) const = default;
};

// One entry in the vocabulary. decode() fills it from a raw value at a level; encode() builds a
// raw value from it. `keep` carries raw bits the vocabulary does not model (x86 protection keys,
// arm64 PBHA/GP/NS, ...) so that decode -> modify -> encode never loses them.
struct Entry {
  Kind kind = Kind::none;
  uint64_t addr = 0;          // output address: page or block base, next-level table, or 0
  uint8_t shift = 0;          // log2 of what this one entry maps (the level's shift)
  uint8_t cont_shift = 0;     // log2 of the contiguous group this entry belongs to, 0 if none
  Prot prot{};           // hardware-enforced permissions (leaf / protnone: the stored ones)
  bool writable = false; // Linux's logical write permission (arm64 DBM, x86 RW, riscv W)
  MemType mem = MemType::normal;
  bool global = false;
  bool accessed = false;
  bool dirty = false;    // Linux's pte_dirty: hardware or software dirty
  Soft soft{};
  Swap swp{};            // valid for Kind::swap and Kind::marker
  Stage2 s2{};           // stage-2 formats only
  Reason reason = Reason::none;
  uint64_t keep = 0;
  constexpr bool operator==(const Entry&) const = default;
};

// Whether e sets a field only a stage-1 format stores (Linux's software bits, swap fields,
// global, the user bit) or a reason: what every stage-2 encoder refuses first.
constexpr bool stage1_fields_set(const Entry& e) {
  return e.reason != Reason::none || e.swp != Swap{} || e.soft != Soft{} || e.global ||
         e.prot.user;
}

// What the hardware does to A/D bits, and how a format records a read-only dirty page.
enum class DirtyModel : uint8_t {
  hw_d,              // a plain D bit (riscv)
  hw_d_saved_dirty,  // x86: D, plus SAVED_DIRTY for W=0 dirty (W=0,D=1 means shadow stack)
  dbm_rdonly,        // arm64: DBM is the write permission; dirty = !RDONLY or software PTE_DIRTY
  dbm_s2ap,          // arm64 stage 2: with DBM the hardware sets S2AP[1] (write) on a write;
                     // dirty = DBM and S2AP[1]
};

struct AdCaps {
  bool hw_accessed;  // hardware sets A/AF on access (arm64: with TCR.HA)
  bool hw_dirty;     // hardware records dirty on write (arm64: with TCR.HD and DBM)
  DirtyModel model;
};

// Level numbering used by every layer: 0 is the smallest (PTE), counting upwards.
// Linux names: 0 pte, 1 pmd, 2 pud, 3 p4d; the root is always "pgd" (levels - 1).
constexpr const char* level_name(unsigned level, unsigned levels) {
  if (level + 1 == levels) return "pgd";
  switch (level) {
    case 0: return "pte";
    case 1: return "pmd";
    case 2: return "pud";
    case 3: return "p4d";
  }
  return "?";
}

}  // namespace hugepte
