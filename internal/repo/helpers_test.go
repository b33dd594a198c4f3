package repo

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/testenv"
)

// clusters are the clusters of testdata/multicluster.
var clusters = []string{"main", "test", "utility"}

// multicluster copies testdata/multicluster into a temporary folder and
// adds each cluster's cluster-secrets, SOPS-encrypted for an age key made
// here (SECRET_DOMAIN: <cluster>.secret.example). It returns the
// repository's root and the keys.
func multicluster(t *testing.T) (string, *render.AgeKeys) {
	t.Helper()
	root := t.TempDir()
	src := filepath.Join("testdata", "multicluster")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		writeFile(t, root, filepath.ToSlash(rel), string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	id := testenv.AgeIdentity(t)
	for _, c := range clusters {
		plain := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-secrets\n  namespace: flux-system\nstringData:\n  SECRET_DOMAIN: " + c + ".secret.example\n"
		writeFile(t, root, "kubernetes/clusters/"+c+"/cluster-secrets.sops.yaml", testenv.EncryptYAML(t, plain, id))
	}
	keys, err := render.ParseAgeKeys(id.String(), "the test's key")
	if err != nil {
		t.Fatal(err)
	}
	return root, keys
}

// writeFile writes a file of the repository at root.
func writeFile(t *testing.T, root, rel, text string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// open opens the repository at root.
func open(t *testing.T, root string) *Repository {
	t.Helper()
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// build renders one Kustomization of the repository at root as YAML.
func build(t *testing.T, root string, opts BuildOptions) (string, *Built, error) {
	t.Helper()
	opts.DefaultNamespace = "flux-system"
	b, err := open(t, root).Build(context.Background(), opts)
	if err != nil {
		return "", nil, err
	}
	return toYAML(t, b.Objects), b, nil
}

func toYAML(t *testing.T, objects []*unstructured.Unstructured) string {
	t.Helper()
	var sb strings.Builder
	for _, o := range objects {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString("---\n")
		sb.Write(b)
	}
	return sb.String()
}

func wantIn(t *testing.T, what, text string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(text, f) {
			t.Errorf("%s lacks %q:\n%s", what, f, text)
		}
	}
}

func wantNotIn(t *testing.T, what, text string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if strings.Contains(text, f) {
			t.Errorf("%s holds %q:\n%s", what, f, text)
		}
	}
}
