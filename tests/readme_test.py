#!/usr/bin/env python3
"""Every ```cpp block in README.md must appear verbatim in a file under examples/ (which CI compiles)."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
blocks = re.findall(r"```cpp\n(.*?)```", (root / "README.md").read_text(), re.S)
sources = [p.read_text() for p in (root / "examples").glob("*.cpp")]
missing = [b.splitlines()[0] for b in blocks if not any(b in s for s in sources)]
for m in missing:
    print(f"README block starting {m!r} is not kept in examples/")
print(f"readme: {len(blocks)} cpp blocks, {len(missing)} missing")
sys.exit(1 if missing else 0)
