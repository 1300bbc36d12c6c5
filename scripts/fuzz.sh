#!/usr/bin/env bash
# Runs every fuzz target of the module for the given time each (default 60s)
# and prints the executions of each. Inputs that fail are written by Go to the
# package's testdata/fuzz/<Target>/, where they become regression seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-60s}
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    out=$(go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s 2>&1) || { echo "$out"; exit 1; }
    execs=$(echo "$out" | grep -oE 'execs: [0-9]+' | tail -1)
    echo "fuzz ${pkg#github.com/deaddrop/deaddrop/} $target ($fuzztime): ${execs:-done}"
  done
done
