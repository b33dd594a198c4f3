package gitrepository_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// newGitRepository creates a GitRepository with a long interval, so that
// every reconcile a test sees comes from a change or a request.
func newGitRepository(t *testing.T, ns, name, url string, mutate func(*sourcev1.GitRepository)) *sourcev1.GitRepository {
	t.Helper()
	obj := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.GitRepositorySpec{
			URL:       url,
			Interval:  metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		},
	}
	if mutate != nil {
		mutate(obj)
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating GitRepository %s: %v", name, err)
	}
	return obj
}

// waitFor polls get until cond holds or the timeout ends.
func waitFor(t *testing.T, timeout time.Duration, what string, obj *sourcev1.GitRepository, cond func(*sourcev1.GitRepository) bool) *sourcev1.GitRepository {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := &sourcev1.GitRepository{}
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got)
		if err == nil && cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last status: %s", timeout, what, describe(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readyWith waits until Ready=True with the revision matching want
// (a full revision or a prefix such as "main@sha1:").
func waitReady(t *testing.T, obj *sourcev1.GitRepository, revision string) *sourcev1.GitRepository {
	t.Helper()
	return waitFor(t, 30*time.Second, "Ready with revision "+revision, obj, func(g *sourcev1.GitRepository) bool {
		return conditions.IsReady(g) && g.Status.Artifact != nil && g.Status.Artifact.Revision == revision &&
			g.Status.ObservedGeneration == g.Generation
	})
}

// waitNotReady waits until Ready=False and returns the object.
func waitNotReady(t *testing.T, obj *sourcev1.GitRepository, timeout time.Duration) *sourcev1.GitRepository {
	t.Helper()
	return waitFor(t, timeout, "Ready=False", obj, func(g *sourcev1.GitRepository) bool {
		return conditions.IsFalse(g, meta.ReadyCondition) && g.Status.ObservedGeneration == g.Generation
	})
}

func describe(g *sourcev1.GitRepository) string {
	s := ""
	for _, c := range g.Status.Conditions {
		s += fmt.Sprintf("[%s=%s %s: %s] ", c.Type, c.Status, c.Reason, c.Message)
	}
	if g.Status.Artifact != nil {
		s += "artifact " + g.Status.Artifact.Revision
	}
	return s
}

// requestReconcile sets reconcile.fluxcd.io/requestedAt as `flux reconcile` does.
func requestReconcile(t *testing.T, obj *sourcev1.GitRepository) string {
	t.Helper()
	got := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	at := time.Now().Format(time.RFC3339Nano)
	ann := got.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[meta.ReconcileRequestAnnotation] = at
	got.SetAnnotations(ann)
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatalf("requesting a reconcile: %v", err)
	}
	return at
}

// artifactFiles downloads the artifact from its URL, as a consumer would,
// checks its digest and returns the file names and contents it holds.
func artifactFiles(t *testing.T, a *meta.Artifact) map[string]string {
	t.Helper()
	resp, err := http.Get(a.URL)
	if err != nil {
		t.Fatalf("downloading the artifact: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("downloading the artifact %s: %s", a.URL, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(body)); got != a.Digest {
		t.Fatalf("artifact digest is %s, status says %s", got, a.Digest)
	}
	if a.Size == nil || *a.Size != int64(len(body)) {
		t.Fatalf("artifact size is %d, status says %v", len(body), a.Size)
	}
	gz, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			files[h.Name] = string(b)
		case tar.TypeSymlink:
			files[h.Name] = "-> " + h.Linkname
		}
	}
	return files
}

func names(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const (
	gitUser     = "weir"
	gitPassword = "s3cret-passw0rd"
)

func newGitServer(t *testing.T) *testenv.GitServer {
	return testenv.NewGitServer(t, gitUser, gitPassword)
}

func createSecret(t *testing.T, ns, name string, data map[string][]byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatalf("creating secret %s: %v", name, err)
	}
}

func createBasicAuthSecret(t *testing.T, ns, name string) {
	createSecret(t, ns, name, map[string][]byte{"username": []byte(gitUser), "password": []byte(gitPassword)})
}

func withSecret(name string) func(*sourcev1.GitRepository) {
	return func(g *sourcev1.GitRepository) { g.Spec.SecretRef = &meta.LocalObjectReference{Name: name} }
}

// waitEvent waits for an event with reason about the named object.
func waitEvent(t *testing.T, ns, name, reason string) corev1.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list corev1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err == nil {
			for _, e := range list.Items {
				if e.InvolvedObject.Name == name && e.InvolvedObject.Kind == sourcev1.GitRepositoryKind && e.Reason == reason {
					return e
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s/%s", reason, ns, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
