package testenv

import (
	"testing"
	"time"
)

// WaitFor polls check every 100 ms until it returns "" or timeout passes,
// and then fails the test with the last thing check said.
func WaitFor(t testing.TB, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if last = check(); last == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("after %s: %s", timeout, last)
}
