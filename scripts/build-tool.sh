#!/usr/bin/env bash
# Builds a storage node used by the tests (Bee, Kubo) from the Go module proxy
# into a cache outside the repository, once per version, and prints the path of
# the binary on stdout (progress goes to stderr).
#
#   build-tool.sh <tools module dir> <version> <main package> <binary> [ldflags]
#
# The tools module (tools/bee, tools/kubo) pins the node and its whole
# dependency tree, which never enters deaddrop's own go.mod. The binary is
# written to a temporary name and renamed, so an interrupted build never leaves
# a broken binary behind.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
module=$1 version=$2 pkg=$3 name=$4 ldflags=${5:-}
cache=$(go env GOCACHE)/../deaddrop-tools/$name-$version
bin=$cache/$name
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -x "$bin" ]; then
  echo "building $name $version into $cache (first time only; a few minutes)…" >&2
  start=$(date +%s)
  (cd "$root/tools/$module" && GOFLAGS=-mod=mod go build -trimpath -o "$bin.tmp" -ldflags "$ldflags" "$pkg")
  mv "$bin.tmp" "$bin"
  echo "built $name $version in $(( $(date +%s) - start ))s" >&2
fi
echo "$bin"
