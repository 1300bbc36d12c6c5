// Command contracts prints the deployable bytecode of Swarm's storage
// incentives test contracts (the version Bee v2.7.0 pins) as JSON, so the test
// harness can deploy them on a dev chain without importing that module (or
// go-ethereum) into deaddrop's own go.mod.
package main

import (
	"encoding/json"
	"os"

	"github.com/ethersphere/go-storage-incentives-abi/abi"
)

func main() {
	out := map[string]string{
		"BzzToken":       abi.TestnetBzzTokenBin,
		"PostageStamp":   abi.TestnetPostageStampBin,
		"PriceOracle":    abi.TestnetPriceOracleBin,
		"Staking":        abi.TestnetStakingBin,
		"Redistribution": abi.TestnetRedistributionBin,
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
