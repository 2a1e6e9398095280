#!/usr/bin/env python3
"""The README's example block is the code between the markers of the test that compiles it."""
import sys
from pathlib import Path

root = Path(sys.argv[1])
readme = (root / "README.md").read_text()
marker = "<!-- example: tests/host/readme_example_test.cpp -->\n```cpp\n"
if marker not in readme:
    sys.exit("README.md: the example block (marker) is missing")
block = readme.split(marker, 1)[1].split("```", 1)[0]
src = (root / "tests/host/readme_example_test.cpp").read_text()
code = src.split("// --- README example begins ---\n", 1)[1].split("// --- README example ends ---", 1)[0]
if block != code:
    sys.exit("README.md's example differs from tests/host/readme_example_test.cpp: copy the file's block")
print("README example matches tests/host/readme_example_test.cpp")
