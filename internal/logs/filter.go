package logs

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Levels are the levels a Filter takes, lowest first.
var Levels = []string{"debug", "info", "error"}

// Filter says which entries to keep. Its zero value keeps every entry.
type Filter struct {
	// Kind keeps the entries about objects of this kind (controllerKind,
	// any case), such as Kustomization.
	Kind string
	// Name keeps the entries about objects of this name.
	Name string
	// Namespace keeps the entries about objects of this namespace, and
	// those about no object (the controllers' own lines); empty keeps all.
	Namespace string
	// Level keeps the entries at this level or above: "debug" keeps all,
	// "info" drops debug and trace lines, "error" keeps only errors.
	Level string
	// Since keeps the entries written at or after it.
	Since time.Time
}

// Validate says what is wrong with f, in the flag names of `weir logs`.
func (f Filter) Validate() error {
	if _, ok := severity(f.Level); f.Level != "" && !ok {
		return fmt.Errorf("unknown level %q: use %s", f.Level, strings.Join(Levels, ", "))
	}
	return nil
}

// Match says whether f keeps e. A line that is not JSON names no object:
// it is kept unless f asks for a kind or a name, and it falls under Since
// by the time of the entry before it.
func (f Filter) Match(e Entry) bool {
	if !f.Since.IsZero() && !e.at.IsZero() && e.at.Before(f.Since) {
		return false
	}
	if !e.Structured {
		return f.Kind == "" && f.Name == ""
	}
	if f.Kind != "" && !strings.EqualFold(e.Kind, f.Kind) {
		return false
	}
	if f.Name != "" && e.Name != f.Name {
		return false
	}
	if f.Namespace != "" && e.Namespace != "" && e.Namespace != f.Namespace {
		return false
	}
	if f.Level != "" {
		have, _ := severity(e.Level)
		want, _ := severity(f.Level)
		if have < want {
			return false
		}
	}
	return true
}

// severity ranks a level as zap does: debug -1, info 0, warn 1, error 2,
// and the numbered levels below debug (Level(-2), Flux's trace) lower
// still. A level it does not know ranks as info (ok false), so that a
// filter on errors drops it and one on info keeps it.
func severity(level string) (rank int, ok bool) {
	switch strings.ToLower(level) {
	case "trace":
		return -2, true
	case "debug":
		return -1, true
	case "info":
		return 0, true
	case "warn", "warning":
		return 1, true
	case "error":
		return 2, true
	case "dpanic", "panic", "fatal":
		return 3, true
	}
	if n, ok := strings.CutPrefix(level, "Level("); ok {
		if v, err := strconv.Atoi(strings.TrimSuffix(n, ")")); err == nil {
			return v, true
		}
	}
	return 0, false
}
