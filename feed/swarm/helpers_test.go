package swarm_test

import (
	"bytes"
	"encoding/hex"
	"io"
)

func hexAddr(a [32]byte) string { return hex.EncodeToString(a[:]) }

func ioNopCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
