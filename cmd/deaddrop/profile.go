package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// heapProfile, with DEADDROP_HEAPPROFILE=<file> (benchmarks only), writes a
// heap profile to the file each time the live heap reaches a new high
// (checked every 20 ms, by a tenth more than the last written), so the file
// left at exit shows what the heap held at its peak. stop writes one last
// time if the heap never grew.
func heapProfile() (stop func()) {
	stopCPU := cpuProfile()
	path := os.Getenv("DEADDROP_HEAPPROFILE")
	if path == "" {
		return stopCPU
	}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var written uint64
	write := func() {
		f, err := os.Create(path)
		if err != nil {
			return
		}
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > written+written/10 {
				written = v
				write()
			}
		}
	}()
	return func() {
		stopCPU()
		close(done)
		<-finished
		if written == 0 {
			write()
		}
	}
}

// cpuProfile, with DEADDROP_CPUPROFILE=<file> (benchmarks only), profiles
// the command's CPU into the file.
func cpuProfile() (stop func()) {
	path := os.Getenv("DEADDROP_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if pprof.StartCPUProfile(f) != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// softMemoryLimit is the Go heap size past which the collector runs as
// often as it must (unless GOMEMLIMIT says otherwise): by default it lets
// the heap grow to twice what is live, and a catch-up, restore or
// compaction that holds ~20 MiB live then peaks at ~50 MiB of RSS. It is a
// soft limit: a command that needs more gets more.
const softMemoryLimit = 40 << 20

func limitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit)
	}
}
