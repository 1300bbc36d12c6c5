//go:build !linux

package sync

import "os"

func datasync(f *os.File) error { return f.Sync() }
