#!/usr/bin/env bash
# Builds Kiln's English pre-training corpus (about 100+ million characters of prose) from Debian
# documentation packages: installs them, then extracts, filters and deduplicates their text with
# scripts/corpus/build_corpus.py. No evaluation corpus is a source, and every paragraph sharing a
# 13-word sequence with one (SpamAssassin, fortunes, the KJV/WEB Bibles) is dropped.
#
#   bash scripts/make_corpus.sh [OUT]      # default OUT: .cache/corpus-en (report in OUT/report.json)
#
# The packages take about 2.5 GB installed. nodejs-doc is left out on purpose: Debian's package
# conflicts with a Node.js installed from elsewhere (and would remove it).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.cache/corpus-en}"
bash scripts/install_deps.sh

docs=(linux-doc-6.1 python3.11-doc debian-handbook gnome-user-docs gnome-devel-docs perl-doc
      postgresql-doc-15 dict-gcide wordnet-base git-doc sqlite3-doc manpages manpages-dev
      debian-reference-en developers-reference maint-guide bash-doc rust-doc octave-doc
      vim-runtime openjdk-17-doc python-pandas-doc python-django-doc lilypond-doc-html gimp-help-en
      libboost1.81-doc apache2-doc cmake-doc exim4-doc-html postfix-doc bind9-doc debian-policy
      harden-doc maxima-doc gnuplot-doc r-doc-html man-db groff-base)
missing=()
for p in "${docs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "make_corpus: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
/usr/bin/python3 scripts/corpus/build_corpus.py --out "$out" --node-modules node_modules
