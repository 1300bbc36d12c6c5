#!/usr/bin/env bash
# Prints the path of a Bee v2.7.0 binary (the newest Bee with 'bee dev'),
# building it on first use.
exec "$(dirname "$0")/build-tool.sh" bee v2.7.0 github.com/ethersphere/bee/v2/cmd/bee bee \
  "-X github.com/ethersphere/bee/v2.version=2.7.0"
