// Package gcstart keeps Go's garbage collector off while weir's packages
// initialize and while a short command runs.
//
// weir is one binary of about a thousand packages; their init functions
// allocate some 13 MiB, and with the collector on, the few collections
// that start during them cost a quarter of the start of every command
// (`weir version` took 54 ms with them, 40 ms without). This package's
// init turns the collector off, with a memory limit of Bound: the heap
// may grow to Bound without a collection, and the first collection,
// which the limit starts, turns the collector back on as the environment
// sets it. So a short command (`weir build`, `weir get`) never collects,
// and nothing can run for long with the collector off, whatever it is.
// Commands that run until stopped (the controller, `weir up`) call
// Restore as they start.
//
// A GOGC or GOMEMLIMIT set in the environment is always kept: the
// collector then runs as the environment says from the start.
package gcstart

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync/atomic"
)

// Bound is the heap a process may grow to before its first collection.
const Bound = 256 << 20

// The collector's settings before init changed them: the environment's,
// or the defaults.
var percent, limit int64

// off tells whether the collector is still off from init.
var off atomic.Bool

func init() {
	_, gogc := os.LookupEnv("GOGC")
	_, memLimit := os.LookupEnv("GOMEMLIMIT")
	if gogc || memLimit {
		return
	}
	percent = int64(debug.SetGCPercent(-1))
	limit = debug.SetMemoryLimit(Bound)
	off.Store(true)
	// The sentinel is unreachable from the start: its finalizer runs
	// after the first collection.
	runtime.SetFinalizer(new([16]byte), func(*[16]byte) { Restore() })
}

// Restore turns the collector back on as the environment sets it, at
// once; it does nothing once the collector is on.
func Restore() {
	if off.CompareAndSwap(true, false) {
		debug.SetMemoryLimit(limit)
		debug.SetGCPercent(int(percent))
	}
}
