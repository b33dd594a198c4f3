package render

import (
	"os"
	"path/filepath"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
)

// A render reports what it read: a change to a file it read, or a file
// added to a folder it listed, touches it; a change to a sibling app
// does not.
func TestReadsTellWhatARenderReached(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"apps/web/kustomization.yaml":        "resources: [deploy.yaml, ../../components/base]\n",
		"apps/web/deploy.yaml":               "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
		"apps/api/kustomization.yaml":        "resources: [cm.yaml]\n",
		"apps/api/cm.yaml":                   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api}\n",
		"components/base/kustomization.yaml": "resources: [cm.yaml]\n",
		"components/base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\n",
		"plain/cm.yaml":                      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n",
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reads := func(p string) Reads {
		t.Helper()
		r := &Report{}
		if _, err := Build(t.Context(), Options{Root: root, Namespace: "default", Spec: kustomizev1.KustomizationSpec{Path: p}, Report: r}); err != nil {
			t.Fatal(err)
		}
		return r.Reads
	}
	web := reads("./apps/web")
	for p, want := range map[string]bool{
		"apps/web/deploy.yaml":                true,
		"apps/web/kustomization.yaml":         true,
		"components/base/cm.yaml":             true,
		"apps/api/cm.yaml":                    false,
		"apps/api/kustomization.yaml":         false,
		"README.md":                           false,
		"components/other/kustomization.yaml": false,
	} {
		if got := web.Touches(p); got != want {
			t.Errorf("apps/web touched by %s: %v, want %v (reads %+v)", p, got, want, web)
		}
	}
	// A folder with no kustomization.yaml takes every manifest in it: a
	// new file there touches it.
	plain := reads("./plain")
	if !plain.Touches("plain/new.yaml") || plain.Touches("apps/web/deploy.yaml") {
		t.Errorf("plain's reads are wrong: %+v", plain)
	}
}
