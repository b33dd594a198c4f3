package manager

import (
	"strings"
	"testing"
)

func TestProfilesAreServedOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1:6060", "[::1]:6060", "localhost:6060", "127.0.0.2:0"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("%q refused: %v", addr, err)
		}
	}
	for _, addr := range []string{":6060", "0.0.0.0:6060", "10.0.0.1:6060", "example.com:6060", "6060"} {
		err := checkLoopback(addr)
		if err == nil || !strings.Contains(err.Error(), "--pprof-addr") {
			t.Errorf("%q: want an error naming --pprof-addr, got %v", addr, err)
		}
	}
}
