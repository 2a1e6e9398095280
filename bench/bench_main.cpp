// bench_main.cpp - registers every case with Google Benchmark (manual time: only run() counts),
// or, with --count=NAME, runs one case once for callgrind (see case.hpp).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "case.hpp"

namespace hugepte::bench {

void hugepte_bench_counted(Case& c);

namespace {

void run_case(benchmark::State& state, const CaseInfo& info) {
  std::unique_ptr<Case> c = info.make();
  for (auto _ : state) {
    c->restore();
    auto t0 = std::chrono::steady_clock::now();
    c->run();
    auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  if (!c->check()) state.SkipWithError("the operation did not produce the expected tables");
  state.counters["ops"] = static_cast<double>(c->ops);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * c->ops));
}

int count(const std::string& name) {
  for (const CaseInfo& info : registry()) {
    if (info.name != name) continue;
    std::unique_ptr<Case> c = info.make();
    c->restore();
    c->run();  // warm up: first-touch page faults and cold caches are not the operation's
    c->restore();
    hugepte_bench_counted(*c);
    if (!c->check()) {
      std::fprintf(stderr, "%s: the operation did not produce the expected tables\n", name.c_str());
      return 1;
    }
    std::printf("%s ops=%llu\n", name.c_str(), static_cast<unsigned long long>(c->ops));
    return 0;
  }
  std::fprintf(stderr, "no case named %s\n", name.c_str());
  return 2;
}

}  // namespace

// The only function callgrind collects in --count mode: exactly one run() of one case.
__attribute__((noinline)) void hugepte_bench_counted(Case& c) {
  c.run();
  benchmark::ClobberMemory();
}

}  // namespace hugepte::bench

int main(int argc, char** argv) {
  using namespace hugepte::bench;  // NOLINT(google-build-using-namespace)
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--count=", 8) == 0) return count(argv[i] + 8);
    if (std::strcmp(argv[i], "--list-cases") == 0) {
      for (const CaseInfo& info : registry()) std::printf("%s\n", info.name.c_str());
      return 0;
    }
  }
  for (const CaseInfo& info : registry())
    benchmark::RegisterBenchmark(info.name.c_str(),
                                 [&info](benchmark::State& s) { run_case(s, info); })
        ->UseManualTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
