package logs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/weirhq/weir/internal/logs"
	"github.com/weirhq/weir/internal/testenv"
	"github.com/weirhq/weir/internal/up"
)

// TestAWeirUpRunsLogIsFoundFromItsKubeconfigAndFiltered runs `weir up` on
// a repository whose Kustomization apps names a missing path, and reads
// the controllers' log of the run as `weir logs` does with that run's
// KUBECONFIG exported.
func TestAWeirUpRunsLogIsFoundFromItsKubeconfigAndFiltered(t *testing.T) {
	repo := t.TempDir()
	writeFile(t, filepath.Join(repo, "clusters/local/apps.yaml"), `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 1h
  path: ./nope
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
`)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := up.Start(ctx, up.Options{Path: repo, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()

	noCluster := func() (kubernetes.Interface, error) { return nil, errors.New("the pods were asked for") }
	src, err := logs.SourceFor("", s.Kubeconfig, noCluster)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := src.(logs.File); !ok || f.Path != filepath.Join(s.StateDir, "logs", "weir.log") {
		t.Fatalf("source %#v, want the run's logs/weir.log", src)
	}

	q := logs.Query{Filter: logs.Filter{Kind: "kustomization", Name: "apps", Namespace: "flux-system", Level: "error"}, Tail: 1}
	var got []logs.Entry
	testenv.WaitFor(t, time.Minute, func() string {
		got = nil
		if err := logs.Read(ctx, src, q, func(e logs.Entry) error { got = append(got, e); return nil }); err != nil {
			return err.Error()
		}
		if len(got) == 0 {
			return "no error of Kustomization apps in the log yet"
		}
		return ""
	})
	e := got[0]
	if e.Kind != "Kustomization" || e.Namespace != "flux-system" || e.Name != "apps" || e.ReconcileID == "" {
		t.Errorf("entry about %s/%s/%s (reconcile %q)", e.Kind, e.Namespace, e.Name, e.ReconcileID)
	}
	line := e.Format()
	if !strings.HasSuffix(line, " error Kustomization/flux-system.apps - Reconciler error: path './nope' not found in the source") {
		t.Errorf("printed as %q", line)
	}
	if time.Since(e.Time) > 5*time.Minute || time.Until(e.Time) > time.Minute {
		t.Errorf("entry time %s is not the time of this run", e.Time)
	}
}

func TestAStateFolderWithoutALogIsRefused(t *testing.T) {
	_, err := logs.SourceFor(t.TempDir(), "", nil)
	if err == nil || !strings.Contains(err.Error(), "weir up") {
		t.Fatalf("got %v", err)
	}
}

// TestFollowingAFileGivesTheLastLinesThenWhatIsAppended follows a copy of
// the captured log while lines are appended to it, and once it is
// truncated, as a log rotated in place is.
func TestFollowingAFileGivesTheLastLinesThenWhatIsAppended(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.log")
	b, err := os.ReadFile(captured)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		q := logs.Query{Follow: true, Tail: 2}
		done <- logs.Read(ctx, logs.File{Path: path, Poll: 10 * time.Millisecond}, q, func(e logs.Entry) error {
			lines <- e.Format()
			return nil
		})
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no line came")
			return ""
		}
	}
	if l := next(); !strings.Contains(l, "debug GitRepository/apps.podinfo - reconciled") {
		t.Errorf("first line %q, want the second last of the file", l)
	}
	if l := next(); l != "controller manager stopped: context canceled" {
		t.Errorf("second line %q, want the last of the file", l)
	}
	appendFile(t, path, `{"level":"info","ts":"2026-12-02T16:20:00Z","msg":"appended"}`+"\n")
	if l := next(); l != "2026-12-02T16:20:00.000Z info weir - appended" {
		t.Errorf("appended line printed as %q", l)
	}
	writeFile(t, path, "after truncation\n")
	if l := next(); l != "after truncation" {
		t.Errorf("after truncation: %q", l)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("following ended with %v, want nothing once stopped", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}
