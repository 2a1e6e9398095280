#!/usr/bin/env python3
"""ratios.py BENCH_BINARY [--callgrind] [extra benchmark args]

Runs the benchmarks (9 repetitions, interleaved in random order) and prints, for each BM_<op>,
the best time per operation of its generic, baseline and (bulk operations) membound cases
over the repetitions, generic / baseline
(1.00: the generic code costs nothing extra) and generic / membound (how far from the memory
bound: the entry stores and table zeroing any implementation must do). Markdown on stdout.

With --callgrind, every case is also run once under `valgrind --tool=callgrind` (the binary's
--count=NAME mode, collecting only the measured operation) and the table gains instructions per
operation and their generic / baseline ratio: a figure a loaded machine cannot disturb.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

SIDES = ("generic", "baseline", "membound")
REPETITIONS = 9


def timings(binary, extra):
    # Repetitions of all cases interleaved in random order, so that a load that comes and goes
    # on a shared machine hits generic and baseline alike; and the fastest repetition of each
    # case, since other work on the machine can only add time to a run.
    cmd = [binary, "--benchmark_format=json", "--benchmark_repetitions=%d" % REPETITIONS,
           "--benchmark_enable_random_interleaving=true"] + extra
    data = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    out = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration" or b.get("error_occurred"):
            continue
        # Cases use manual time: real_time is the time of run() alone, per run of `ops` operations.
        name = b["run_name"].removesuffix("/manual_time")
        scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
        t = b["real_time"] * scale / b.get("ops", 1.0)
        out[name] = min(t, out.get(name, t))
    return out


def instructions(binary, name):
    with tempfile.TemporaryDirectory() as d:
        out_file = os.path.join(d, "cg.out")
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no",
             "--toggle-collect=*hugepte_bench_counted*", "--callgrind-out-file=" + out_file,
             binary, "--count=" + name], check=True, capture_output=True, text=True)
        ops = int(re.search(r"ops=(\d+)", proc.stdout).group(1))
        with open(out_file) as f:
            total = int(re.search(r"^totals:\s*(\d+)", f.read(), re.M).group(1))
    return total / ops


def fmt_time(ns):
    if ns is None:
        return ""
    for unit, div in (("ms", 1e6), ("µs", 1e3)):
        if ns >= div * 10:
            return "%.1f %s" % (ns / div, unit) if ns < div * 100 else "%.0f %s" % (ns / div, unit)
    return "%.1f ns" % ns if ns < 100 else "%.0f ns" % ns


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else ""


def main():
    args = sys.argv[1:]
    use_cg = "--callgrind" in args
    args = [a for a in args if a != "--callgrind"]
    binary, extra = args[0], args[1:]
    t = timings(binary, extra)
    ops = sorted({n.rsplit("/", 1)[0] for n in t if n.rsplit("/", 1)[1] in SIDES})
    head = "| benchmark (per operation) | generic | baseline | generic / baseline | membound | generic / membound |"
    line = "|---|---:|---:|---:|---:|---:|"
    if use_cg:
        head += " Ir generic | Ir baseline | Ir generic / baseline |"
        line += "---:|---:|---:|"
    print(head)
    print(line)
    for op in ops:
        g, b, m = (t.get(op + "/" + s) for s in SIDES)
        if g is None or b is None:
            continue
        row = "| %s | %s | %s | %s | %s | %s |" % (
            op, fmt_time(g), fmt_time(b), ratio(g, b), fmt_time(m), ratio(g, m))
        if use_cg:
            ig, ib = instructions(binary, op + "/generic"), instructions(binary, op + "/baseline")
            row += " %.0f | %.0f | %.2f |" % (ig, ib, ig / ib)
        print(row, flush=True)


if __name__ == "__main__":
    main()
