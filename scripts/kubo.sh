#!/usr/bin/env bash
# Prints the path of a Kubo v0.43.1 binary, building it on first use.
exec "$(dirname "$0")/build-tool.sh" kubo v0.43.1 github.com/ipfs/kubo/cmd/ipfs ipfs
