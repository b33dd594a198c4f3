package up

import (
	"path/filepath"
	"testing"
)

// A background run is found from its folder alone, whatever its state
// folder, and forgotten only by the run that recorded it.
func TestARunIsFoundFromItsFolder(t *testing.T) {
	t.Setenv(RunsDirEnv, t.TempDir())
	repo := filepath.Join(t.TempDir(), "cluster")
	if _, ok := FindRun(repo); ok {
		t.Fatal("a run was found before any was recorded")
	}
	first := Run{Path: repo, StateDir: "/var/tmp/state-a", PID: 10}
	if err := RecordRun(first); err != nil {
		t.Fatal(err)
	}
	if got, ok := FindRun(repo); !ok || got != first {
		t.Fatalf("FindRun = %+v, %v; want %+v", got, ok, first)
	}
	if _, ok := FindRun(repo + "-other"); ok {
		t.Error("another folder finds this folder's run")
	}
	// A newer run of the same folder replaces the record; the older one
	// ending does not remove it.
	second := Run{Path: repo, StateDir: "/var/tmp/state-b", PID: 11}
	if err := RecordRun(second); err != nil {
		t.Fatal(err)
	}
	ForgetRun(repo, first.StateDir)
	if got, ok := FindRun(repo); !ok || got != second {
		t.Fatalf("after the older run ended, FindRun = %+v, %v; want %+v", got, ok, second)
	}
	ForgetRun(repo, second.StateDir)
	if _, ok := FindRun(repo); ok {
		t.Error("the run is still found after it was forgotten")
	}
}
