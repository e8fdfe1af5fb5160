#!/usr/bin/env python3
"""Fails when a header or source under kiln/<folder>/ includes a Kiln folder its CMake target may not use,
when mpi.h appears anywhere but kiln/distributed/*.cpp, or when a public header of a Tensor-only folder
names kiln::Array (issue 17: one public tensor type).

The allowed table (kiln_layers.txt) is written by CMake from each kiln_add_library(... DEPS ...), so the
rule lives in one place: dependencies point down, nothing includes upward."""
import pathlib
import re
import sys

root, table = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
allowed = {}
for line in table.read_text().splitlines():
    folder, _, deps = line.partition(":")
    allowed[folder.strip()] = set(deps.replace(";", " ").split())
# The layer table docs/ARCHITECTURE.md documents: a change to a folder's DEPS must change this too.
expected = {
    "tensor": set(),
    "autograd": {"tensor"},
    "io": {"autograd", "tensor"},
    "tokenizers": {"io", "autograd", "tensor"},
    "nn": {"autograd", "tensor"},
    "optim": {"autograd", "tensor"},
    "data": {"io", "autograd", "tensor"},
    "distributed": {"nn", "autograd", "tensor"},
    "train": {"distributed", "nn", "optim", "io", "autograd", "tensor"},
    "onnx": {"nn", "io", "autograd", "tensor"},
    "track": {"train", "distributed", "data", "nn", "optim", "io", "autograd", "tensor"},
    "text": {"track", "onnx", "train", "distributed", "data", "nn", "optim", "tokenizers", "io",
             "autograd", "tensor"},
    "vision": {"track", "train", "distributed", "data", "nn", "optim", "io", "autograd", "tensor"},
    "automl": {"text", "vision", "track", "onnx", "train", "distributed", "data", "nn", "optim",
               "tokenizers", "io", "autograd", "tensor"},
}
table_errors = []
for folder, deps in expected.items():
    if folder in allowed and allowed[folder] - {folder} != deps:
        table_errors.append(f"kiln_{folder} may include {sorted(allowed[folder] - {folder})}, "
                            f"documented: {sorted(deps)} (update docs/ARCHITECTURE.md and this table)")
for folder in allowed:
    if folder not in expected:
        table_errors.append(f"kiln_{folder} is not in the documented layer table")
# Folders whose public headers speak kiln::Tensor only: Array (kiln/tensor) stays in their .cpp files
# and *_internal.h headers (not installed, cmake/KilnInstall.cmake). tensor, autograd and optim work on
# Arrays by design; every other folder is checked.
tensor_only = {"io", "tokenizers", "nn", "data", "distributed", "train", "onnx", "track", "text",
               "vision", "automl"}
# kiln::Array named as a type: `kiln::Array`, a bare `Array` (`const Array&`, `Array f();`, `<Array>`)
# or its header. Another scope's `Array` (json::Value's `Kind::Array`) is not kiln::Array, and an
# enumerator named Array is blanked out with its enum's body before the scan.
array_word = re.compile(r"\bkiln::Array\b|(?<![\w:])Array\b|kiln/tensor/array\.h")
enum_body = re.compile(r"\benum\b[^;{}]*\{[^{}]*\}")


def blank_enum_bodies(text):
    """text with each enum's declaration and body replaced by spaces, whitespace (line breaks) kept."""
    return enum_body.sub(lambda m: re.sub(r"\S", " ", m.group()), text)


inc = re.compile(r'#include\s+[<"]kiln/(\w+)/')
mpi = re.compile(r'#include\s+[<"]mpi\.h[>"]')
bad = []
for path in sorted(root.rglob("*")):
    if path.suffix not in (".h", ".cpp") or path.parent == root:
        continue
    folder = path.relative_to(root).parts[0]
    if folder not in allowed:
        continue
    source = path.read_text(errors="replace")
    masked = blank_enum_bodies(source).splitlines()
    for n, text in enumerate(source.splitlines(), 1):
        # MPI stays inside kiln_distributed's sources: no header (public API) and no other folder.
        if mpi.search(text) and not (folder == "distributed" and path.suffix == ".cpp"):
            bad.append(f"{path}:{n}: only kiln/distributed/*.cpp may include mpi.h")
        public_header = path.suffix == ".h" and not path.name.endswith("_internal.h")
        code = masked[n - 1].split("//")[0]
        if folder in tensor_only and public_header and array_word.search(code):
            bad.append(f"{path}:{n}: kiln/{folder}'s public API takes and returns kiln::Tensor, "
                       "not Array (convert in the .cpp or a *_internal.h header)")
        m = inc.search(text)
        if m and m.group(1) not in allowed[folder]:
            bad.append(f"{path}:{n}: kiln_{folder} may not include kiln/{m.group(1)}/ "
                       f"(allowed: {sorted(allowed[folder])})")
bad = table_errors + bad
for b in bad:
    print(b)
print(f"layering: {len(allowed)} folders checked, {len(bad)} violations")
sys.exit(1 if bad else 0)
