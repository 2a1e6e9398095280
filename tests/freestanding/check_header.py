#!/usr/bin/env python3
"""Compiles one header of the freestanding core on its own, as the bare-metal images do
(-ffreestanding -fno-exceptions -fno-rtti), and fails if it - or any header of the core it pulls
in - includes a standard header that C++20 does not require a freestanding implementation to
have, or anything of the hosted host model.

usage: check_header.py CXX HEADER REPO_ROOT INCLUDE_DIR...
"""
import os
import subprocess
import sys

# C++20 [compliance] table 27: the headers a freestanding implementation provides.
FREESTANDING = {
    "cstddef", "limits", "cfloat", "climits", "version", "cstdint", "new", "typeinfo",
    "source_location", "exception", "initializer_list", "compare", "coroutine", "cstdarg",
    "concepts", "type_traits", "bit", "atomic",
    # C's freestanding <stdint.h> (C17 4p6), which the compiler itself ships: the header that
    # declares uint64_t and friends in the global namespace, the library's spelling (entry.hpp).
    "stdint.h",
}


def main():
    cxx, header, root = sys.argv[1], os.path.realpath(sys.argv[2]), os.path.realpath(sys.argv[3])
    incs = [os.path.realpath(d) for d in sys.argv[4:]]
    host_model = os.path.join(root, "host") + os.sep
    cmd = [cxx, "-std=c++20", "-ffreestanding", "-fno-exceptions", "-fno-rtti", "-fsyntax-only",
           "-Wall", "-Wextra", "-Werror", "-H", "-x", "c++", "-"]
    for d in incs:
        cmd += ["-I", d]
    p = subprocess.run(cmd, input=f'#include "{header}"\n', capture_output=True, text=True)
    problems = []
    if p.returncode != 0:
        problems.append("does not compile freestanding:\n" + p.stderr)
    # -H prints one line per include: as many dots as the depth, a space, the path.
    stack = ["<stdin>"]  # stack[d] is the file at depth d; depth 1 is the header itself
    for line in p.stderr.splitlines():
        dots = len(line) - len(line.lstrip("."))
        if dots == 0 or not line[dots:].startswith(" "):
            continue
        path = os.path.realpath(line[dots + 1:].strip())
        del stack[dots:]
        includer = stack[-1]
        stack.append(path)
        ours = includer.startswith(root + os.sep)
        if not ours:
            continue  # what the standard library includes inside itself is its business
        if path.startswith(host_model):
            problems.append(f"{os.path.relpath(includer, root)} includes the host model "
                            f"{os.path.relpath(path, root)}")
        elif not path.startswith(root + os.sep):
            name = os.path.basename(path)
            if name not in FREESTANDING:
                problems.append(f"{os.path.relpath(includer, root)} includes <{name}>, "
                                "which is not a freestanding header")
    rel = os.path.relpath(header, root)
    if problems:
        print(f"{rel}: NOT freestanding")
        for pr in dict.fromkeys(problems):
            print("  " + pr)
        return 1
    print(f"{rel}: freestanding")
    return 0


if __name__ == "__main__":
    sys.exit(main())
