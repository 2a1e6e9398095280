#!/usr/bin/env python3
"""ring.py - the linux ring: the scenarios of scenario.hpp on Debian's Linux 6.1 and on the model.

  ring.py --init BIN --model BIN --kernel-dir DIR --known FILE --out DIR

Boots the kernel (fetched by tools/linux-kernel.sh into --kernel-dir when missing) under
qemu-system-x86_64 with an initramfs holding only BIN as /init, runs the model runner, and
compares the two, scenario by scenario and step by step. A difference fails the ring unless
--known lists the scenario with its reason (see that file). Writes linux.jsonl, model.jsonl and
report.txt into --out.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def cpio_newc(entries):
    """An uncompressed newc archive of (name, mode, data, rdev_major, rdev_minor)."""
    out = bytearray()
    ino = 1
    for name, mode, data, major, minor in entries + [("TRAILER!!!", 0, b"", 0, 0)]:
        nb = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(nb), 0]
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + nb
        out += b"\0" * ((4 - len(out) % 4) % 4)
        out += data
        out += b"\0" * ((4 - len(out) % 4) % 4)
        ino += 1
    return bytes(out)


def initramfs(init_path, path):
    with open(init_path, "rb") as f:
        init = f.read()
    entries = [
        ("dev", 0o040755, b"", 0, 0),
        ("dev/console", 0o020600, b"", 5, 1),
        ("proc", 0o040755, b"", 0, 0),
        ("sys", 0o040755, b"", 0, 0),
        ("init", 0o100755, init, 0, 0),
    ]
    with open(path, "wb") as f:
        f.write(cpio_newc(entries))


def kernel(kernel_dir):
    vmlinuz = os.path.join(kernel_dir, "vmlinuz")
    if not os.path.exists(vmlinuz):
        subprocess.run(["sh", os.path.join(ROOT, "tools", "linux-kernel.sh"), kernel_dir], check=True)
    return vmlinuz


def scenarios(lines):
    out = {}
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            d = json.loads(line)
            out[d["scenario"]] = d["steps"]
    return out


def known(path):
    """scenario -> reason, from lines `scenario: reason` (# comments, blank lines ignored)."""
    k = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, reason = line.partition(":")
                k[name.strip()] = reason.strip()
    return k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--kernel-dir", required=True)
    ap.add_argument("--known", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=int, default=240)
    ap.add_argument("--only", default="", help="run only the scenarios whose name contains this")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    vmlinuz = kernel(a.kernel_dir)
    rd = os.path.join(a.out, "initramfs.cpio")
    initramfs(a.init, rd)
    cmd = ["qemu-system-x86_64", "-M", "pc", "-cpu", "max,la57=off", "-m", "3G", "-smp", "1",
           "-display", "none", "-serial", "stdio", "-monitor", "none", "-nic", "none",
           "-no-reboot", "-kernel", vmlinuz, "-initrd", rd, "-append",
           "console=ttyS0 quiet panic=-1 hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=0 "
           "transparent_hugepage=never" + (" hpt_only=" + a.only if a.only else "")]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                           timeout=a.timeout)
        console = p.stdout
    except subprocess.TimeoutExpired as e:  # keep what the guest printed: it names the scenario
        out = e.stdout or b""
        console = out.decode(errors="replace") if isinstance(out, bytes) else out
        console += "\n(linux ring: the guest ran out of its %d s)\n" % a.timeout
    boot_s = time.time() - t0
    console = console.replace("\r", "")
    with open(os.path.join(a.out, "console.txt"), "w") as f:
        f.write(console)
    if "hugepte-linux-ring: end" not in console:
        print("linux ring: the guest did not finish (see %s)" % os.path.join(a.out, "console.txt"))
        print(console[-3000:])
        return 1
    body = console.split("hugepte-linux-ring: begin", 1)[1].split("hugepte-linux-ring: end", 1)[0]
    linux = scenarios(body.splitlines())

    m = subprocess.run([a.model], capture_output=True, text=True, check=True)
    model = {k: v for k, v in scenarios(m.stdout.splitlines()).items() if a.only in k}
    with open(os.path.join(a.out, "linux.jsonl"), "w") as f:
        f.write("".join(json.dumps({"scenario": k, "steps": v}) + "\n" for k, v in linux.items()))
    with open(os.path.join(a.out, "model.jsonl"), "w") as f:
        f.write(m.stdout)

    k = known(a.known)
    report, bad, listed = [], 0, 0
    for name in model:
        if name not in linux:
            report.append("MISSING on linux: " + name)
            bad += 1
            continue
        lsteps, msteps = linux[name], model[name]
        if lsteps == msteps:
            if name in k:
                report.append("AGREES but listed as known: %s (remove it from the file)" % name)
                bad += 1
            continue
        diff = []
        for i in range(max(len(lsteps), len(msteps))):
            ls = lsteps[i] if i < len(lsteps) else "-"
            ms = msteps[i] if i < len(msteps) else "-"
            if ls != ms:
                diff.append("    step %d\n      linux: %s\n      model: %s" % (i, ls, ms))
        if name in k:
            listed += 1
            report.append("known difference: %s (%s)\n%s" % (name, k[name], "\n".join(diff)))
        else:
            bad += 1
            report.append("DIFFERENCE: %s\n%s" % (name, "\n".join(diff)))
    summary = ("linux ring: %d scenarios, %d agree, %d known differences, %d failures "
               "(boot and run %.0f s)" % (len(model), len(model) - listed - bad, listed, bad, boot_s))
    report.append(summary)
    text = "\n".join(report) + "\n"
    with open(os.path.join(a.out, "report.txt"), "w") as f:
        f.write(text)
    print(text)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
