// case.hpp - one benchmark case: untimed set-up, the measured operation, a check of the result.
//
// Every case is registered as BM_<op>/<side> (side: generic, baseline, membound) with manual
// timing: only run() is timed (steady clock around it), restore() puts the tables back before
// each run without being measured, so no PauseTiming is needed. run() may perform `ops`
// operations (a batch, so that one timed region is long against the clock's own cost); the
// counter "ops" carries that number to bench/ratios.py, which reports time per operation.
//
// The same cases run under callgrind for instruction counts (bench/ratios.py --callgrind):
// `hugepte_bench --count=NAME` sets the case up, runs it once to warm up, restores, and runs it
// once more inside hugepte_bench_counted(), the one function callgrind collects
// (--collect-atstart=no --toggle-collect=hugepte_bench_counted).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hugepte/entry.hpp"

namespace hugepte::bench {

struct Case {
  virtual ~Case() = default;
  virtual void restore() {}   // before every run, untimed
  virtual void run() = 0;     // the measured operation(s)
  virtual bool check() { return true; }  // after the last run, untimed: did it do the job?
  uint64_t ops = 1;                // operations per run()
};

struct CaseInfo {
  std::string name;
  std::function<std::unique_ptr<Case>()> make;
};

inline std::vector<CaseInfo>& registry() {
  static std::vector<CaseInfo> r;
  return r;
}

// Registers a case at static-initialisation time: `static const bool r = add("BM_x/generic", ...)`.
inline bool add(std::string name, std::function<std::unique_ptr<Case>()> make) {
  registry().push_back({std::move(name), std::move(make)});
  return true;
}

template <class C, class... A>
std::function<std::unique_ptr<Case>()> make(A... a) {
  return [=] { return std::unique_ptr<Case>(new C(a...)); };
}

}  // namespace hugepte::bench
