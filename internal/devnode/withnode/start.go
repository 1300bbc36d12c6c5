package main

import (
	"fmt"

	"github.com/deaddrop/deaddrop/internal/devnode"
)

func start(kind, dir string) (*devnode.Node, string, error) {
	switch kind {
	case "bee":
		n, err := devnode.Bee(dir)
		if err != nil {
			return nil, "", err
		}
		return n, "swarm:" + n.URL, nil
	case "kubo":
		n, err := devnode.Kubo(dir)
		if err != nil {
			return nil, "", err
		}
		return n, "ipfs:" + n.URL, nil
	}
	return nil, "", fmt.Errorf("unknown node kind %q (want bee or kubo)", kind)
}
