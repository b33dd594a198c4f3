package gcstart

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestCollectorComesBackAtTheBound checks what every weir process relies
// on: no collection while the heap is small, and the usual pacing, with
// no memory limit left behind, once the heap has grown past Bound, even
// when nothing calls Restore.
func TestCollectorComesBackAtTheBound(t *testing.T) {
	_, gogc := os.LookupEnv("GOGC")
	_, memLimit := os.LookupEnv("GOMEMLIMIT")
	if gogc || memLimit {
		// The user's settings win: init must have left the collector on.
		if off.Load() || debug.SetGCPercent(-1) < 0 {
			t.Fatal("with GOGC or GOMEMLIMIT set, init turned the collector off")
		}
		return
	}
	if !off.Load() {
		t.Fatal("the collector is on at the start of the test: init did not run")
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	small := make([][]byte, 0, 64)
	for range 64 {
		small = append(small, make([]byte, 64<<10)) // 4 MiB in all
	}
	var mid runtime.MemStats
	runtime.ReadMemStats(&mid)
	if mid.NumGC != before.NumGC {
		t.Fatalf("%d collections with 4 MiB allocated under a %d MiB bound", mid.NumGC-before.NumGC, Bound>>20)
	}
	// Garbage past the bound, and no runtime.GC: the bound alone must
	// start the collection that turns the collector back on.
	var garbage []byte
	for i := 0; i < 2*Bound>>20 && off.Load(); i++ {
		garbage = make([]byte, 1<<20)
		time.Sleep(100 * time.Microsecond)
	}
	_, _ = garbage, small
	for i := 0; i < 100 && off.Load(); i++ {
		time.Sleep(10 * time.Millisecond) // the finalizer runs on its own goroutine
	}
	if off.Load() {
		t.Fatal("the collector was not turned back on after the heap passed the bound")
	}
	if got := debug.SetGCPercent(int(percent)); got != int(percent) || got < 0 {
		t.Errorf("GOGC is %d after the bound, want %d", got, percent)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("a memory limit of %d bytes was left behind", got)
	}
}
