// Package gcstart keeps Go's garbage collector off while weir's packages
// initialize and while a short command runs.
//
// weir is one binary of about a thousand packages; their init functions
// allocate some 13 MiB, and with the collector on, the few collections
// that start during them cost a third of the start of every command
// (`weir version` takes 54 ms with them, 40 ms without). The package is
// imported first by cmd/weir, so its init turns the collector off before
// the heavy packages run theirs. Main then calls Restore for a command
// that runs long (the controller, `weir up`, the MCP server), or
// Defer for one that finishes in moments (`weir build`, `weir get`):
// that one keeps the collector off until its heap reaches a bound, and
// collects as usual from then on.
//
// A GOGC or GOMEMLIMIT the user set in the environment is always kept.
package gcstart

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sync/atomic"
)

// percent is the collector's setting before init turned it off: the
// environment's GOGC, or 100.
var percent = debug.SetGCPercent(-1)

// off tells whether the collector is still off from init: Restore and
// Defer act only then, so that a process that runs several commands (a
// test) sets it once.
var off atomic.Bool

func init() { off.Store(true) }

// userSet tells whether the user chose how the collector runs.
func userSet() bool {
	_, gogc := os.LookupEnv("GOGC")
	_, limit := os.LookupEnv("GOMEMLIMIT")
	return gogc || limit
}

// Restore turns the collector back on as the environment sets it.
func Restore() {
	if off.CompareAndSwap(true, false) {
		debug.SetGCPercent(percent)
	}
}

// Defer keeps the collector off until the heap nears limit bytes, then
// turns it back on as the environment sets it. With GOGC or GOMEMLIMIT
// set, it restores at once.
func Defer(limit int64) {
	if !off.Load() {
		return
	}
	if userSet() {
		Restore()
		return
	}
	debug.SetMemoryLimit(limit)
	// With the collector off, the memory limit starts the first
	// collection; the sentinel's finalizer runs after it and hands the
	// heap back to the usual pacing.
	sentinel := new([16]byte)
	runtime.SetFinalizer(sentinel, func(*[16]byte) {
		if off.CompareAndSwap(true, false) {
			debug.SetMemoryLimit(math.MaxInt64)
			debug.SetGCPercent(percent)
		}
	})
}
