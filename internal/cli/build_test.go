package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// runOffline runs weir in this process with no reachable cluster.
func runOffline(t *testing.T, args ...string) (string, error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestBuildRendersTheExampleWithoutACluster(t *testing.T) {
	example := filepath.Join("..", "..", "examples", "cluster")
	out, err := runOffline(t, "build", "ks", "echo",
		"--path", filepath.Join(example, "kubernetes/apps/default/echo/app"), "--repo", example)
	if err != nil {
		t.Fatalf("build failed: %v\n%s", err, out)
	}
	for _, want := range []string{"kind: OCIRepository", "url: oci://ghcr.io/charts/app", "kind: HelmRelease", "domain: echo.home.example", "namespace: default", "app.kubernetes.io/name: echo"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	if _, err := runOffline(t, "build", "ks", "nope", "--path", example, "--repo", example); err == nil || !strings.Contains(err.Error(), "no Kustomization named nope") {
		t.Errorf("want an error naming the missing Kustomization, got %v", err)
	}
}
