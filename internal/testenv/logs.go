package testenv

import (
	"bytes"
	"sync"
)

// maxLogSize bounds what Logs keeps; later lines are dropped.
const maxLogSize = 64 << 20

// Logs holds everything weir's controllers logged (at debug level and
// above) since the manager started, for tests that check what reaches
// the log, such as that no secret does.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p, up to maxLogSize in all.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxLogSize - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}

// String is the log so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
