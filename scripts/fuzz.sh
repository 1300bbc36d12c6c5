#!/usr/bin/env bash
# Runs every fuzz target of the module for the given time each (default 60s)
# and prints the executions of each. Inputs that fail are written by Go to the
# package's testdata/fuzz/<Target>/, where they become regression seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-60s}
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    run() { go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s 2>&1; }
    if ! out=$(run); then
      # Go's fuzz coordinator sometimes gives up on a busy machine with
      # "context deadline exceeded" and no failing input: not a finding.
      # Run once more; a real failure writes its input and fails again.
      if echo "$out" | grep -q 'context deadline exceeded' && ! echo "$out" | grep -q 'Failing input written'; then
        out=$(run) || { echo "$out"; exit 1; }
      else
        echo "$out"; exit 1
      fi
    fi
    execs=$(echo "$out" | grep -oE 'execs: [0-9]+' | tail -1)
    echo "fuzz ${pkg#github.com/deaddrop/deaddrop/} $target ($fuzztime): ${execs:-done}"
  done
done
