package render

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// writeTree writes files (slash paths relative to the root) into a new
// temporary folder and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// fakeValues serves ConfigMaps and Secrets from maps keyed "namespace/name".
type fakeValues struct {
	configMaps map[string]map[string]string
	secrets    map[string]map[string][]byte
	err        error // returned for every read when set
}

func (f fakeValues) ConfigMap(_ context.Context, namespace, name string) (map[string]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	if cm, ok := f.configMaps[namespace+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (f fakeValues) Secret(_ context.Context, namespace, name string) (map[string][]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	if s, ok := f.secrets[namespace+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

// ids lists objects as "Kind namespace/name" in output order.
func ids(objects []*unstructured.Unstructured) []string {
	out := make([]string, len(objects))
	for i, u := range objects {
		out[i] = u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
	}
	return out
}

// find returns the object of that kind and name, failing the test when
// there is none.
func find(t *testing.T, objects []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range objects {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	t.Fatalf("no %s %s in %v", kind, name, ids(objects))
	return nil
}

// str reads a string field of an object.
func str(u *unstructured.Unstructured, fields ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	return s
}

// wantError checks that err is a render *Error of the step whose message
// holds every fragment.
func wantError(t *testing.T, err error, step Step, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want a %s error", step)
	}
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("error %q (%T) is not a *render.Error", err, err)
	}
	if re.Step != step {
		t.Errorf("step %q, want %q (error: %s)", re.Step, step, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not say %q", err, f)
		}
	}
}

const configMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
data:
  key: value
`

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
`

// listTree lists the files under root, slash paths relative to it.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// readFile reads a file of the source on disk.
func readFile(t *testing.T, root, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
