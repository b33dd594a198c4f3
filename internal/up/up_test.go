package up_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-git/go-git/v5/plumbing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	controlplanev1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/up"
)

func TestUpSyncsTheFolderAndPicksUpEdits(t *testing.T) {
	repo := t.TempDir()
	writeFile(t, filepath.Join(repo, "kubernetes/apps/app.yaml"), "replicas: 1\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	start := time.Now()
	s, err := up.Start(ctx, up.Options{Path: repo, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	first, err := s.WaitReady(ctx, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first sync Ready in %s", time.Since(start))
	if _, err := os.Stat(s.Kubeconfig); err != nil {
		t.Errorf("no kubeconfig at %s", s.Kubeconfig)
	}
	if s.StateDir != filepath.Join(repo, ".weir") {
		t.Errorf("state folder %s, want PATH/.weir", s.StateDir)
	}

	changed := make(chan plumbing.Hash, 1)
	go func() { _ = s.Watch(ctx, 200*time.Millisecond, func(h plumbing.Hash) { changed <- h }) }()
	writeFile(t, filepath.Join(repo, "kubernetes/apps/app.yaml"), "replicas: 3\n")
	var h plumbing.Hash
	select {
	case h = <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("the edit was not committed")
	}
	want := "main@sha1:" + h.String()
	deadline := time.Now().Add(30 * time.Second)
	for {
		obj := &sourcev1.GitRepository{}
		err := s.Client.Get(ctx, client.ObjectKey{Namespace: up.SourceName, Name: up.SourceName}, obj)
		if err == nil && conditions.IsReady(obj) && obj.Status.Artifact.Revision == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edit did not reach the GitRepository (was %s, want %s)", first.Status.Artifact.Revision, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The state folder is not served: the snapshot ignores .weir.
	if first.Status.Artifact.Revision == want {
		t.Error("the revision did not change")
	}
}

func TestUpRefusesAMissingFolder(t *testing.T) {
	_, err := up.Start(context.Background(), up.Options{Path: filepath.Join(t.TempDir(), "nope")})
	if err == nil {
		t.Fatal("want an error for a missing folder")
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

// A repository that holds the seed's FluxInstance, whose sync names a
// GitHub remote and a deploy key, still syncs from weir up's own Git
// server: the instance applies its sync there, at its path.
func TestUpKeepsARepositorysFluxInstanceLocal(t *testing.T) {
	repo := t.TempDir()
	writeFile(t, filepath.Join(repo, "kubernetes/flux/cluster/flux-instance.yaml"), `apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata:
  name: flux
  namespace: flux-system
spec:
  distribution:
    version: 2.7.x
    registry: ghcr.io/fluxcd
  cluster:
    networkPolicy: false
  sync:
    kind: GitRepository
    url: ssh://git@github.com/owner/home-ops.git
    ref: refs/heads/main
    path: kubernetes/flux/cluster
    pullSecret: github-deploy-key
`)
	writeFile(t, filepath.Join(repo, "kubernetes/flux/cluster/settings.yaml"),
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: flux-system\ndata:\n  a: b\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := up.Start(ctx, up.Options{Path: repo, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := s.WaitReady(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		fi := &controlplanev1.FluxInstance{}
		gr := &sourcev1.GitRepository{}
		err := s.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "flux"}, fi)
		if err == nil {
			err = s.Client.Get(ctx, client.ObjectKey{Namespace: up.SourceName, Name: up.SourceName}, gr)
		}
		if err == nil && conditions.IsReady(fi) && gr.Spec.URL == s.RepoURL && gr.Spec.SecretRef == nil && conditions.IsReady(gr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the FluxInstance is not Ready syncing from weir up's server: %v; instance %v; GitRepository url %s secretRef %v",
				err, fi.Status.Conditions, gr.Spec.URL, gr.Spec.SecretRef)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
