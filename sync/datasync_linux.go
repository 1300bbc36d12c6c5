package sync

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync flushes f's data (and its size, when that changed) to the disk,
// not its times: one device flush where fsync may take two.
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
