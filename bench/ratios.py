#!/usr/bin/env python3
"""ratios.py BENCH_BINARY [extra benchmark args] - run the benchmarks with repetitions and print,
for each BM_<op>/generic and BM_<op>/baseline pair, the median CPU time of each and their ratio
(generic / baseline; 1.00 means the generic code costs nothing extra). Markdown table on stdout.
"""
import json
import subprocess
import sys


def main():
    cmd = [sys.argv[1], "--benchmark_format=json", "--benchmark_repetitions=5",
           "--benchmark_report_aggregates_only=true"] + sys.argv[2:]
    data = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    medians = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") == "median":
            medians[b["run_name"]] = b["cpu_time"], b["time_unit"]
    print("| benchmark | generic | baseline | generic / baseline |")
    print("|---|---:|---:|---:|")
    for name, (t, unit) in sorted(medians.items()):
        if not name.endswith("/generic"):
            continue
        op = name[: -len("/generic")]
        base = medians.get(op + "/baseline")
        if not base:
            continue
        print("| %s | %.0f %s | %.0f %s | %.2f |" % (op, t, unit, base[0], base[1], t / base[0]))


if __name__ == "__main__":
    main()
