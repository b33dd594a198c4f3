package logs_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/weirhq/weir/internal/logs"
)

// testdata/weir-up.log holds lines captured from the logs/weir.log of a
// `weir up` run whose Kustomization apps names a missing path, with
// lines such a log also holds added in between: a panic's first lines
// (not JSON), a debug line as the GitRepository reconciler writes it at
// --log-level=debug, and the line `weir up` writes when the controllers
// stop.
const captured = "testdata/weir-up.log"

// read returns the formatted entries q keeps from the captured log.
func read(t *testing.T, q logs.Query) []string {
	t.Helper()
	var out []string
	err := logs.Read(context.Background(), logs.File{Path: captured}, q, func(e logs.Entry) error {
		out = append(out, e.Format())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAnEntryIsPrintedAsFluxLogsPrintsIt(t *testing.T) {
	out := read(t, logs.Query{Filter: logs.Filter{Kind: "Kustomization", Name: "apps", Level: "error"}, Tail: 1})
	want := "2026-12-02T16:15:21.000Z error Kustomization/flux-system.apps - Reconciler error: path './nope' not found in the source"
	if len(out) != 1 || out[0] != want {
		t.Fatalf("got %q\nwant %q", out, want)
	}
}

func TestLinesThatAreNotJSONArePrintedAsTheyAreAndTheReadingGoesOn(t *testing.T) {
	out := read(t, logs.Query{})
	all := strings.Join(out, "\n")
	for _, want := range []string{
		"panic: runtime error: invalid memory address or nil pointer dereference",
		"\tgoroutine 42 [running]:",
		"2026-12-02T16:15:21.000Z error Kustomization/flux-system.apps - Reconciler error",
		"controller manager stopped: context canceled",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the log lacks %q:\n%s", want, all)
		}
	}
	lines, _ := os.ReadFile(captured)
	if n := strings.Count(string(lines), "\n"); len(out) != n {
		t.Errorf("%d lines printed of %d", len(out), n)
	}
}

func TestFilters(t *testing.T) {
	cases := []struct {
		name   string
		filter logs.Filter
		want   []string // each printed line contains one of these, in order
	}{
		{"kind in any case, name", logs.Filter{Kind: "kustomization", Name: "apps"}, []string{
			"info Kustomization/flux-system.apps - metadata.finalizers",
			"error Kustomization/flux-system.apps - Reconciler error",
			"error Kustomization/flux-system.apps - Reconciler error",
		}},
		{"errors only", logs.Filter{Level: "error"}, []string{
			"error Kustomization/flux-system.apps",
			"panic: runtime error",
			"goroutine 42",
			"error Kustomization/flux-system.apps",
			"controller manager stopped",
		}},
		{"a namespace keeps the controllers' own lines", logs.Filter{Namespace: "apps"}, []string{
			"info Kustomization - Starting EventSource",
			"info GitRepository - Starting Controller",
			"info GitRepository - Starting workers",
			"panic: runtime error",
			"goroutine 42",
			"debug GitRepository/apps.podinfo - reconciled",
			"controller manager stopped",
		}},
		{"info and above drops debug", logs.Filter{Kind: "GitRepository", Level: "info"}, []string{
			"info GitRepository - Starting Controller",
			"info GitRepository - Starting workers",
			"info GitRepository/flux-system.flux-system - metadata.finalizers",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := read(t, logs.Query{Filter: tc.filter})
			if len(out) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(out), len(tc.want), strings.Join(out, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(out[i], w) {
					t.Errorf("line %d: %q lacks %q", i, out[i], w)
				}
			}
		})
	}
}

func TestSinceDropsOlderEntriesAndTheLinesThatFollowThem(t *testing.T) {
	e := logs.Parse(`{"level":"info","ts":"2026-12-02T16:15:21Z","msg":"x"}`)
	out := read(t, logs.Query{Filter: logs.Filter{Since: e.Time}})
	if len(out) != 3 || !strings.Contains(out[0], "16:15:21.000Z error") || out[2] != "controller manager stopped: context canceled" {
		t.Fatalf("got %q", out)
	}
}

func TestAnUnknownLevelIsRefused(t *testing.T) {
	err := logs.Read(context.Background(), logs.File{Path: captured}, logs.Query{Filter: logs.Filter{Level: "loud"}}, func(logs.Entry) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "debug, info, error") {
		t.Fatalf("got %v", err)
	}
}

func TestTimesInEveryEncodingWeirWrites(t *testing.T) {
	for _, ts := range []string{`"2026-12-02T15:00:00Z"`, `"2026-12-02T15:00:00.000Z"`, `"2026-12-02T16:00:00.000+0100"`, `1796223600`} {
		e := logs.Parse(`{"level":"info","ts":` + ts + `,"msg":"m"}`)
		if got := e.Format(); got != "2026-12-02T15:00:00.000Z info weir - m" {
			t.Errorf("ts %s: got %q", ts, got)
		}
	}
}
