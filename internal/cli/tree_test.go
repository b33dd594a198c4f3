package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReconcileWithSourceThenTreeAndEvents(t *testing.T) {
	s := newLiveSource(t, "apps")
	s.commit = s.repo.Commit("main", map[string]string{
		"deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  k: v\n",
	}, "add settings").String()
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "app"},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: time.Hour},
			Path:            "./deploy",
			Prune:           true,
			TargetNamespace: s.ns,
			SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "apps"},
		},
	}
	if err := env.Client.Create(context.Background(), ks); err != nil {
		t.Fatal(err)
	}

	// The source still holds the first commit: only --with-source brings
	// the new one in.
	out := mustRunWeir(t, "reconcile", "ks", "app", "--with-source", "-n", s.ns)
	for _, want := range []string{"fetched revision main@sha1:" + s.commit, "applied revision main@sha1:" + s.commit} {
		if !strings.Contains(out, want) {
			t.Errorf("reconcile --with-source output lacks %q:\n%s", want, out)
		}
	}
	tree := mustRunWeir(t, "tree", "ks", "app", "-n", s.ns)
	if !strings.Contains(tree, "Kustomization/"+s.ns+"/app") || !strings.Contains(tree, "└── ConfigMap/"+s.ns+"/settings") {
		t.Errorf("tree does not show the applied ConfigMap:\n%s", tree)
	}
	// diff: nothing to change for the applied files, exit 1 with the field
	// named once the local file differs.
	deployDir := filepath.Join(s.repo.Dir(), "deploy")
	if code, out, errOut := runWeir(t, "diff", "ks", "app", "--path", deployDir, "-n", s.ns); code != 0 {
		t.Errorf("diff of unchanged files exited %d:\n%s%s", code, out, errOut)
	}
	if err := os.WriteFile(filepath.Join(deployDir, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  k: changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runWeir(t, "diff", "ks", "app", "--path", deployDir, "-n", s.ns)
	if code != 1 || !strings.Contains(out, "ConfigMap/"+s.ns+"/settings drifted") || !strings.Contains(out, "/data/k") {
		t.Errorf("diff of a changed file: exit %d, want 1 naming the field:\n%s%s", code, out, errOut)
	}

	events := mustRunWeir(t, "events", "--for", "Kustomization/app", "-n", s.ns)
	if !strings.Contains(events, "ConfigMap/"+s.ns+"/settings created") || !strings.Contains(events, "LAST SEEN") {
		t.Errorf("events do not show the apply:\n%s", events)
	}
}
