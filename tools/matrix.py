#!/usr/bin/env python3
"""matrix.py BUILD_DIR JSON_OUT - turn the system ring's guest logs into the test matrix.

Each guest image prints one "CASE <PASS|FAIL|SKIP> arch=.. mode=.. group=.. name=.. [reason=..]"
line per case and a closing "N passed, M failed, K skipped" line (tests/system/guest_main.cpp).
This prints arch x mode x group with pass/fail/skip counts and skip reasons, writes the same rows
as JSON, and exits non-zero if anything failed or an image did not report. A guest that printed no
summary (crashed, hung, never booted) is a failure row of its own, never a silent pass.
"""
import json
import pathlib
import re
import sys

CASE = re.compile(r"^CASE (PASS|FAIL|SKIP) arch=(\S+) mode=(\S+) group=(\S+) name=(\S+)(?: reason=(.*))?$")
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$")


def parse_log(image, text):
    rows = {}
    summary = None
    for line in text.splitlines():
        line = line.rstrip("\r")
        m = CASE.match(line)
        if m:
            status, arch, mode, group, _name, reason = m.groups()
            row = rows.setdefault((arch, mode, group), {"passed": 0, "failed": 0, "skipped": 0, "reasons": []})
            row[{"PASS": "passed", "FAIL": "failed", "SKIP": "skipped"}[status]] += 1
            if status == "SKIP" and reason and reason not in row["reasons"]:
                row["reasons"].append(reason)
        elif SUMMARY.match(line):
            summary = line
    if summary is None:
        arch, _, mode = image.partition("-")
        row = rows.setdefault((arch, mode, "boot"), {"passed": 0, "failed": 0, "skipped": 0, "reasons": []})
        row["failed"] += 1
        row["reasons"].append("guest printed no summary (crashed, hung or did not boot)")
    return rows


def main():
    build = pathlib.Path(sys.argv[1])
    out = pathlib.Path(sys.argv[2])
    images = sorted(p.name[:-4] for p in (build / "guests").glob("*.elf"))
    if not images:
        print("matrix: no guest images under %s/guests" % build, file=sys.stderr)
        return 2
    rows = {}
    for image in images:
        log = build / "guest-logs" / (image + ".log")
        text = log.read_text(errors="replace") if log.exists() else ""
        rows.update(parse_log(image, text))

    table = []
    def natural(key):  # 4k before 16k, sv39 before sv48
        return [tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", part)) for part in key]

    for (arch, mode, group), r in sorted(rows.items(), key=lambda kv: natural(kv[0])):
        table.append({"arch": arch, "mode": mode, "group": group, "passed": r["passed"], "failed": r["failed"],
                      "skipped": r["skipped"], "skip_reason": "; ".join(r["reasons"]) or None})
    out.write_text(json.dumps(table, indent=2) + "\n")

    head = ("arch", "mode", "group", "passed", "failed", "skipped", "skip reason")
    cells = [head] + [(t["arch"], t["mode"], t["group"], str(t["passed"]), str(t["failed"]), str(t["skipped"]),
                       t["skip_reason"] or "") for t in table]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    for n, c in enumerate(cells):
        print("  ".join(v.rjust(widths[i]) if 3 <= i <= 5 else v.ljust(widths[i]) for i, v in enumerate(c)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    passed = sum(t["passed"] for t in table)
    failed = sum(t["failed"] for t in table)
    skipped = sum(t["skipped"] for t in table)
    print("\nmatrix: %d images, written to %s" % (len(images), out))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
