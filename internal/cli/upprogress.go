package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/weirhq/weir/internal/up"
)

// progress shows one line per Kustomization and HelmRelease while `weir
// up` waits for them: redrawn in place on a terminal, one line per change
// otherwise (a log, a pipe).
type progress struct {
	out     io.Writer
	tty     bool
	tracker *up.Tracker
	drawn   int               // lines drawn last time, on a terminal
	last    map[string]string // last line printed per object, otherwise
}

func newProgress(out io.Writer, start time.Time) *progress {
	tty := false
	if f, ok := out.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progress{out: out, tty: tty, tracker: up.NewTracker(start), last: map[string]string{}}
}

// follow refreshes the lines every period until ctx ends, then once more.
func (p *progress) follow(ctx context.Context, s *up.Session, period time.Duration) {
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-time.After(period):
		}
		// A list that fails (the cluster is busy) is skipped: the next
		// tick tries again, and WaitAllReady reports what matters.
		if statuses, err := s.Statuses(context.WithoutCancel(ctx)); err == nil {
			p.show(statuses, time.Now())
		}
	}
}

func (p *progress) show(statuses []up.Status, now time.Time) {
	width := 0
	for _, s := range statuses {
		width = max(width, len(s.ID()))
	}
	if p.tty {
		var b strings.Builder
		if p.drawn > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
		}
		for _, s := range statuses {
			fmt.Fprintf(&b, "\x1b[2K  %s %-*s  %s\n", mark(s.Phase, os.Getenv("NO_COLOR") == ""), width, s.ID(), p.tracker.Line(s, now))
		}
		p.drawn = len(statuses)
		fmt.Fprint(p.out, b.String())
		return
	}
	for _, s := range statuses {
		line := p.tracker.Line(s, now)
		if p.last[s.ID()] == line {
			continue
		}
		p.last[s.ID()] = line
		fmt.Fprintf(p.out, "  %s %s: %s\n", mark(s.Phase, false), s.ID(), line)
	}
}

// mark is the symbol of a phase, coloured on a terminal.
func mark(ph up.Phase, colour bool) string {
	sym, code := "◎", "33" // yellow
	switch ph {
	case up.Ready:
		sym, code = "✔", "32"
	case up.Failed:
		sym, code = "✗", "31"
	case up.Suspended:
		sym, code = "‖", "90"
	case up.Pending:
		sym, code = "·", "90"
	}
	if !colour {
		return sym
	}
	return "\x1b[" + code + "m" + sym + "\x1b[0m"
}
