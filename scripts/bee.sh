#!/usr/bin/env bash
# Prints the path of a Bee v2.7.0 binary (the newest Bee with 'bee dev'),
# building it on first use. It is built as Bee's own CI builds its test
# networks: libp2p reports public reachability, without which nodes of a
# private loopback network never store pushed chunks ('bee dev' ignores it).
exec "$(dirname "$0")/build-tool.sh" bee v2.7.0-testnet github.com/ethersphere/bee/v2/cmd/bee bee \
  "-X github.com/ethersphere/bee/v2.version=2.7.0 -X github.com/ethersphere/bee/v2/pkg/p2p/libp2p.reachabilityOverridePublic=true"
