package up_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/up"
)

// TestExampleRepositoryConverges runs the README's main job: the example
// repository, shaped like the seed, reconciled until every Kustomization is
// Ready, with cluster settings substituted into the apps.
func TestExampleRepositoryConverges(t *testing.T) {
	repo := t.TempDir()
	if err := os.CopyFS(repo, os.DirFS(filepath.Join("..", "..", "examples", "cluster"))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	s, err := up.Start(ctx, up.Options{Path: repo})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if s.RootPath != "./kubernetes/flux/cluster" {
		t.Errorf("root found at %q, want ./kubernetes/flux/cluster", s.RootPath)
	}
	if _, err := s.WaitReady(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	all, err := s.WaitAllReady(ctx, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d Kustomizations Ready in %s", len(all), time.Since(start))
	if len(all) != 15 {
		t.Errorf("%d Kustomizations, want 15 (root, cluster-apps and 13 apps)", len(all))
	}
	cm := &corev1.ConfigMap{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "echo-config"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["domain"] != "echo.home.example" || cm.Data["timezone"] != "Europe/Paris" {
		t.Errorf("cluster settings not substituted: %v", cm.Data)
	}
}
