#!/usr/bin/env bash
# Installs what Kiln builds and tests with, from Debian's packages and the npm registry only.
# Idempotent: skips apt when every package is present. Usage: scripts/install_deps.sh [--bench]
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(g++ cmake ninja-build pkg-config python3 nodejs npm clang-format
      libopenblas-dev libdnnl-dev libtbb-dev libeigen3-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
      libprotobuf-dev protobuf-compiler libonnx-dev libonnx-testdata
      libpng-dev libjpeg-dev zlib1g-dev
      libsqlite3-dev libsqlitecpp-dev libssl-dev libcpp-httplib-dev chromium
      libopenmpi-dev openmpi-bin
      fortunes sword-text-kjv sword-text-web dataset-fashion-mnist octave-doc
      r-base-core r-cran-modeldata)
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(libtorch-dev python3-torch)
fi

missing=()
for p in "${pkgs[@]}"; do
  # node/npm may come from elsewhere (a newer Node.js); only ask apt when the command is absent.
  if [[ "$p" == nodejs ]] && command -v node >/dev/null; then continue; fi
  if [[ "$p" == npm ]] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "install_deps: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Data sets, reference tokenizers and ONNX Runtime for tests (package.json pins the versions).
# playwright-core drives Debian's chromium in the `kiln ui` browser test (its own browser download,
# an install script, is skipped by --ignore-scripts and never used).
# Reinstalls when any package package.json lists is missing, or not at its pinned (exact) version.
npm_missing=$(node -e '
  const pkg = require("./package.json");
  const deps = Object.assign({}, pkg.dependencies, pkg.devDependencies);
  for (const [name, version] of Object.entries(deps)) {
    let have = null;
    try { have = require("./node_modules/" + name + "/package.json").version; } catch (e) {}
    const exact = /^[0-9]/.test(version);
    if (have === null || (exact && have !== version))
      console.log(name + "@" + version + (have ? " (have " + have + ")" : ""));
  }')
if [[ -n "$npm_missing" ]]; then
  echo "install_deps: npm install --ignore-scripts (missing: $(echo $npm_missing))"
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
fi

# Tabular data for kiln automl classification / regression: R's modeldata sets as CSV in
# .cache/modeldata (skipped when already there).
bash scripts/data/export_modeldata.sh
