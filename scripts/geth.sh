#!/usr/bin/env bash
# Prints the path of a go-ethereum v1.17.10 binary (geth), building it on first
# use. The multi-node Swarm test network runs 'geth --dev' as its chain.
exec "$(dirname "$0")/build-tool.sh" geth v1.17.10 github.com/ethereum/go-ethereum/cmd/geth geth
