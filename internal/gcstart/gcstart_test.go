package gcstart

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestDeferCollectsFromTheBound checks what a short command relies on:
// no collection while the heap is small, and the usual pacing (and no
// memory limit left behind) once it has grown past the bound.
func TestDeferCollectsFromTheBound(t *testing.T) {
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	Defer(64 << 20)
	small := make([][]byte, 0, 64)
	for range 64 {
		small = append(small, make([]byte, 64<<10)) // 4 MiB in all
	}
	var mid runtime.MemStats
	runtime.ReadMemStats(&mid)
	if mid.NumGC != before.NumGC {
		t.Fatalf("%d collections with 4 MiB allocated under a 64 MiB bound", mid.NumGC-before.NumGC)
	}
	// Garbage past the bound: no explicit runtime.GC, the bound alone
	// must start the collection that hands the collector back.
	var garbage []byte
	for i := 0; i < 1024 && off.Load(); i++ {
		garbage = make([]byte, 1<<20)
		time.Sleep(time.Millisecond)
	}
	_ = garbage
	_ = small
	if off.Load() {
		t.Fatal("the collector was not handed back after the heap passed the bound")
	}
	if got := debug.SetGCPercent(percent); got != percent {
		t.Errorf("GOGC is %d after the bound, want %d", got, percent)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<63-1 {
		t.Errorf("a memory limit of %d bytes was left behind", got)
	}
}
