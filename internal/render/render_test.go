package render

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

func TestPathOutsideTheSourceIsRefused(t *testing.T) {
	outside := writeTree(t, map[string]string{"cm.yaml": fmt.Sprintf(configMap, "secret-stuff")})
	root := writeTree(t, map[string]string{
		"apps/x/cm.yaml": fmt.Sprintf(configMap, "x"),
		"file.yaml":      fmt.Sprintf(configMap, "f"),
	})
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want string
	}{
		{"../", "path '../' is outside the source"},
		{"./apps/../../x", "path './apps/../../x' is outside the source"},
		{"./escape", "path './escape' leads outside the source through a symlink"},
		{"./apps/nope", "path './apps/nope' not found in the source"},
		{"./file.yaml", "path './file.yaml' is not a folder"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: tc.path}})
			wantError(t, err, StepPath, tc.want)
		})
	}
}

func TestPathIsRelativeToTheRoot(t *testing.T) {
	root := writeTree(t, map[string]string{"apps/x/cm.yaml": fmt.Sprintf(configMap, "x")})
	for _, path := range []string{"./apps/x", "apps/x", "/apps/x", "./apps/x/"} {
		objects, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: path}})
		if err != nil {
			t.Fatalf("path %q: %v", path, err)
		}
		if got := ids(objects); !reflect.DeepEqual(got, []string{"ConfigMap /x"}) {
			t.Errorf("path %q: got %v", path, got)
		}
	}
}

func TestKustomizeLoadsStayInsideTheSource(t *testing.T) {
	outside := writeTree(t, map[string]string{
		"kustomization.yaml": "resources: [cm.yaml]\n",
		"cm.yaml":            fmt.Sprintf(configMap, "outside"),
	})
	root := writeTree(t, map[string]string{
		"base/kustomization.yaml":    "resources: [cm.yaml]\n",
		"base/cm.yaml":               fmt.Sprintf(configMap, "base"),
		"overlay/kustomization.yaml": "resources: [../base]\n",
		// climbs out of the root however deep it is.
		"escape/kustomization.yaml":     "resources: [" + strings.Repeat("../", 30) + strings.TrimPrefix(outside, "/") + "]\n",
		"escapefile/kustomization.yaml": "resources: [" + strings.Repeat("../", 30) + strings.TrimPrefix(outside, "/") + "/cm.yaml]\n",
		"link/kustomization.yaml":       "resources: [out/cm.yaml]\n",
	})
	if err := os.Symlink(outside, filepath.Join(root, "link", "out")); err != nil {
		t.Fatal(err)
	}

	objects, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: "./overlay"}})
	if err != nil {
		t.Fatalf("../base inside the source: %v", err)
	}
	if got := ids(objects); !reflect.DeepEqual(got, []string{"ConfigMap /base"}) {
		t.Errorf("got %v", got)
	}

	for _, path := range []string{"./escape", "./escapefile", "./link"} {
		objects, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: path}})
		wantError(t, err, StepBuild, "kustomize build failed")
		if objects != nil {
			t.Errorf("%s: objects %v", path, ids(objects))
		}
		if strings.Contains(err.Error(), root) {
			t.Errorf("%s: the error shows the absolute root: %s", path, err)
		}
	}
}

func TestOverlayFromTheSpec(t *testing.T) {
	files := map[string]string{
		"app/kustomization.yaml": "resources: [deploy.yaml, cm.yaml, ns.yaml]\n",
		"app/deploy.yaml":        deployment,
		"app/cm.yaml":            fmt.Sprintf(configMap, "settings"),
		"app/ns.yaml":            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: original\n",
		"component/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources: [extra.yaml]
`,
		"component/extra.yaml": fmt.Sprintf(configMap, "extra"),
	}
	cases := []struct {
		name  string
		spec  kustomizev1.KustomizationSpec
		check func(t *testing.T, objects []*unstructured.Unstructured)
	}{{
		name: "patches",
		spec: kustomizev1.KustomizationSpec{Patches: []kustomize.Patch{{
			Patch:  "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
			Target: &kustomize.Selector{Kind: "Deployment"},
		}, {
			Patch:  `[{"op": "add", "path": "/data/patched", "value": "yes"}]`,
			Target: &kustomize.Selector{Kind: "ConfigMap", Name: "settings"},
		}}},
		check: func(t *testing.T, objects []*unstructured.Unstructured) {
			replicas, _, _ := unstructured.NestedInt64(find(t, objects, "Deployment", "web").Object, "spec", "replicas")
			if replicas != 3 {
				t.Errorf("replicas %d, want 3", replicas)
			}
			if got := str(find(t, objects, "ConfigMap", "settings"), "data", "patched"); got != "yes" {
				t.Errorf("JSON6902 patch: data.patched %q", got)
			}
		},
	}, {
		name: "images",
		spec: kustomizev1.KustomizationSpec{Images: []kustomize.Image{{Name: "nginx", NewName: "registry.local/nginx", NewTag: "1.27"}}},
		check: func(t *testing.T, objects []*unstructured.Unstructured) {
			cs, _, _ := unstructured.NestedSlice(find(t, objects, "Deployment", "web").Object, "spec", "template", "spec", "containers")
			if got := cs[0].(map[string]any)["image"]; got != "registry.local/nginx:1.27" {
				t.Errorf("image %v", got)
			}
		},
	}, {
		name: "namePrefix and nameSuffix",
		spec: kustomizev1.KustomizationSpec{NamePrefix: "pre-", NameSuffix: "-suf"},
		check: func(t *testing.T, objects []*unstructured.Unstructured) {
			find(t, objects, "Deployment", "pre-web-suf")
			find(t, objects, "ConfigMap", "pre-settings-suf")
		},
	}, {
		name: "targetNamespace",
		spec: kustomizev1.KustomizationSpec{TargetNamespace: "team"},
		check: func(t *testing.T, objects []*unstructured.Unstructured) {
			for _, kind := range []string{"Deployment", "ConfigMap"} {
				for _, u := range objects {
					if u.GetKind() == kind && u.GetNamespace() != "team" {
						t.Errorf("%s %s in namespace %q", kind, u.GetName(), u.GetNamespace())
					}
				}
			}
			// As with kustomize's namespace field, which Flux sets: a
			// Namespace object is renamed to the target.
			ns := find(t, objects, "Namespace", "team")
			if ns.GetNamespace() != "" {
				t.Errorf("Namespace has namespace %q", ns.GetNamespace())
			}
		},
	}, {
		name: "commonMetadata",
		spec: kustomizev1.KustomizationSpec{CommonMetadata: &kustomizev1.CommonMetadata{
			Labels:      map[string]string{"team": "a", "app": "overridden"},
			Annotations: map[string]string{"owner": "ops"},
		}},
		check: func(t *testing.T, objects []*unstructured.Unstructured) {
			for _, u := range objects {
				if u.GetLabels()["team"] != "a" || u.GetAnnotations()["owner"] != "ops" {
					t.Errorf("%s %s: labels %v annotations %v", u.GetKind(), u.GetName(), u.GetLabels(), u.GetAnnotations())
				}
			}
			d := find(t, objects, "Deployment", "web")
			if d.GetLabels()["app"] != "overridden" {
				t.Errorf("commonMetadata does not override: %v", d.GetLabels())
			}
			// Only metadata: selectors are left alone (unlike commonLabels).
			if got := str(d, "spec", "selector", "matchLabels", "app"); got != "web" {
				t.Errorf("selector changed to %q", got)
			}
		},
	}, {
		name: "components",
		spec: kustomizev1.KustomizationSpec{Components: []string{"../component"}},
		check: func(t *testing.T, objects []*unstructured.Unstructured) {
			find(t, objects, "ConfigMap", "extra")
		},
	}, {
		name: "missing components ignored",
		spec: kustomizev1.KustomizationSpec{Components: []string{"../component", "../nope"}, IgnoreMissingComponents: true},
		check: func(t *testing.T, objects []*unstructured.Unstructured) {
			find(t, objects, "ConfigMap", "extra")
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Path = "./app"
			objects, err := Build(context.Background(), Options{Root: writeTree(t, files), Spec: tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, objects)
		})
	}
}

func TestComponentErrors(t *testing.T) {
	root := writeTree(t, map[string]string{"app/cm.yaml": fmt.Sprintf(configMap, "x")})
	for _, tc := range []struct {
		components []string
		want       string
	}{
		{[]string{"../nope"}, "kustomize build failed"},
		{[]string{"https://example.com/component"}, "must be local and relative"},
	} {
		_, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: "./app", Components: tc.components}})
		wantError(t, err, StepBuild, tc.want)
	}
}

func TestUnusualFileNames(t *testing.T) {
	// Names that kustomize's own in-memory file system refuses.
	root := writeTree(t, map[string]string{
		"my apps, v2/kustomization.yaml": "resources:\n- web+db @1.yaml\n- a..b.yaml\n- ../shared café/\n",
		"my apps, v2/web+db @1.yaml":     fmt.Sprintf(configMap, "web"),
		"my apps, v2/a..b.yaml":          fmt.Sprintf(configMap, "ab"),
		"shared café/kustomization.yaml": "resources: [x.yaml]\n",
		"shared café/x.yaml":             fmt.Sprintf(configMap, "shared"),
	})
	objects, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: "./my apps, v2"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(objects), []string{"ConfigMap /web", "ConfigMap /ab", "ConfigMap /shared"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestOutputKeepsKustomizeOrder(t *testing.T) {
	// Flux builds without kustomize's legacy reordering: objects come out
	// in the order the kustomization lists them.
	root := writeTree(t, map[string]string{
		"kustomization.yaml": "resources: [deploy.yaml, cm.yaml, ns.yaml]\n",
		"deploy.yaml":        deployment,
		"cm.yaml":            fmt.Sprintf(configMap, "settings"),
		"ns.yaml":            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n",
	})
	objects, err := Build(context.Background(), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Deployment /web", "ConfigMap /settings", "Namespace /apps"}
	if got := ids(objects); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestObjectsAreNotLabelled(t *testing.T) {
	root := writeTree(t, map[string]string{"cm.yaml": fmt.Sprintf(configMap, "x")})
	objects, err := Build(context.Background(), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if l, a := objects[0].GetLabels(), objects[0].GetAnnotations(); len(l) != 0 || len(a) != 0 {
		t.Errorf("labels %v annotations %v", l, a)
	}
}

func TestNoRemoteBases(t *testing.T) {
	for _, ref := range []string{
		"https://example.invalid/manifests/cm.yaml",
		"github.com/example/repo//deploy?ref=v1",
		"git@example.invalid:org/repo.git",
		"ssh://git@example.invalid/org/repo",
	} {
		root := writeTree(t, map[string]string{
			"kustomization.yaml":        "resources: [nested]\n",
			"nested/kustomization.yaml": "resources:\n- cm.yaml\n- " + ref + "\n",
			"nested/cm.yaml":            fmt.Sprintf(configMap, "x"),
		})
		_, err := Build(context.Background(), Options{Root: root, NoRemoteBases: true})
		wantError(t, err, StepBuild, "nested/kustomization.yaml refers to '"+ref+"'", "remote bases are disabled")
	}
}

func TestInvalidObjectsAreRefused(t *testing.T) {
	root := writeTree(t, map[string]string{
		"kustomization.yaml": "resources: [bad.yaml]\n",
		"bad.yaml":           "apiVersion: v1\nkind: ConfigMap\ndata:\n  password: hunter2\n",
	})
	_, err := Build(context.Background(), Options{Root: root})
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the object's data: %s", err)
	}
}

func TestSourceCopy(t *testing.T) {
	outside := writeTree(t, map[string]string{"secret.txt": "host secret"})
	root := writeTree(t, map[string]string{
		"a/cm.yaml":      fmt.Sprintf(configMap, "a"),
		"shared/cm.yaml": fmt.Sprintf(configMap, "shared"),
	})
	for link, target := range map[string]string{
		"a/out":      outside,
		"a/file":     filepath.Join(outside, "secret.txt"),
		"a/shared":   filepath.Join(root, "shared"),
		"a/loop":     filepath.Join(root, "a"),
		"a/dangling": filepath.Join(root, "nope"),
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newSourceCopy(real, maxSourceBytes, maxSourceEntries)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"a/cm.yaml":        true,
		"a/shared/cm.yaml": true, // a symlink inside the source is followed
		"a/out":            false,
		"a/file":           false,
		"a/dangling":       false,
		"a/loop":           false, // a loop is not followed
		"shared/cm.yaml":   true,
	} {
		if got := m.Exists(filepath.Join(real, p)); got != want {
			t.Errorf("%s copied: %v, want %v", p, got, want)
		}
	}
	if err := m.loadError(); err != nil {
		t.Fatal(err)
	}

	big := writeTree(t, map[string]string{"a.yaml": strings.Repeat("x", 600<<10), "b.yaml": strings.Repeat("y", 600<<10)})
	if m, err = newSourceCopy(big, 1<<20, maxSourceEntries); err != nil {
		t.Fatal(err)
	}
	if m.Exists(filepath.Join(big, "a.yaml")); m.loadError() == nil || !strings.Contains(m.loadError().Error(), "larger than 1 MiB") {
		t.Errorf("a source over the limit: %v", m.loadError())
	}

	// Folders with two symlinks to the next one: 2^20 paths without a loop.
	fan := t.TempDir()
	for i := 0; i < 20; i++ {
		d := filepath.Join(fan, fmt.Sprint(i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			for _, l := range []string{"a", "b"} {
				if err := os.Symlink(d, filepath.Join(fan, fmt.Sprint(i-1), l)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if m, err = newSourceCopy(fan, maxSourceBytes, 1000); err != nil {
		t.Fatal(err)
	}
	_ = m.Walk(fan, func(string, fs.FileInfo, error) error { return nil })
	if err := m.loadError(); err == nil || !strings.Contains(err.Error(), "more than 1000 files and folders") {
		t.Errorf("a source that fans out: %v", err)
	}
}

// A render reads the folders its Kustomization reaches, not the whole
// source: a folder it does not reach is never read.
func TestRenderReadsOnlyTheFoldersItReaches(t *testing.T) {
	root := writeTree(t, map[string]string{
		"apps/a/kustomization.yaml": "resources: [cm.yaml, ../../base]\n",
		"apps/a/cm.yaml":            fmt.Sprintf(configMap, "a"),
		"apps/b/cm.yaml":            fmt.Sprintf(configMap, "b"),
		"base/kustomization.yaml":   "resources: [cm.yaml]\n",
		"base/cm.yaml":              fmt.Sprintf(configMap, "base"),
	})
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := loadSource(real, false)
	if err != nil {
		t.Fatal(err)
	}
	m := fsys.(sourceFS).FileSystem.(*memFS)
	if _, err := kustomizeBuild(fsys, filepath.Join(real, "apps", "a"), false); err != nil {
		t.Fatal(err)
	}
	if !m.unloaded[filepath.Join(real, "apps", "b")] {
		t.Error("apps/b, which the render does not reach, was read")
	}
	if _, ok := m.files[filepath.Join(real, "base", "cm.yaml")]; !ok {
		t.Error("base/cm.yaml, which the render reaches, was not read")
	}
}

// One large file in what a render reads fails it: the error names the
// file and how to leave it out. (The artifact store refuses such a tree
// at its source, so that every Kustomization of it fails the same way.)
func TestSourceOverTheLimitNamesItsLargestFiles(t *testing.T) {
	root := writeTree(t, map[string]string{
		"apps/cm.yaml":    fmt.Sprintf(configMap, "a"),
		"apps/notes.md":   strings.Repeat("n", 3<<20),
		"other/notes.md":  strings.Repeat("n", 5<<20),
		"other/cm.yaml":   fmt.Sprintf(configMap, "b"),
		"apps/small.yaml": fmt.Sprintf(configMap, "c"),
	})
	// Sparse: 120 MB on paper, nothing on disk.
	if err := os.WriteFile(filepath.Join(root, "apps", "dump.bin"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(root, "apps", "dump.bin"), 120_000_000); err != nil {
		t.Fatal(err)
	}
	_, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: "./apps"}})
	wantError(t, err, StepPath, "larger than 100 MiB", "its largest files: apps/dump.bin (114.4 MiB), apps/cm.yaml", "spec.ignore")
	// other/, which the render does not reach, is not read: its render
	// works.
	if _, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: "./other"}}); err != nil {
		t.Errorf("a render of a folder without the large file failed: %v", err)
	}
}

func TestErrorsSpeakInSourcePaths(t *testing.T) {
	root := "/var/lib/weir/src"
	for msg, want := range map[string]string{
		"open /var/lib/weir/src/apps/x.yaml: no such file":                  "open apps/x.yaml: no such file",
		"'/var/lib/weir/src' doesn't exist":                                 "'.' doesn't exist",
		"/var/lib/weir/src2/x and /var/lib/weir/src":                        "/var/lib/weir/src2/x and .",
		"path '/var/lib/weir/src/a' is not in or below '/var/lib/weir/src'": "path 'a' is not in or below '.'",
	} {
		if got := stripRoot(msg, root); got != want {
			t.Errorf("stripRoot(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestConcurrentRenders(t *testing.T) {
	root := writeTree(t, map[string]string{
		"a/kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: a-\n",
		"a/cm.yaml":            fmt.Sprintf(configMap, "x"),
		"b/cm.yaml":            fmt.Sprintf(configMap, "y"),
	})
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			path, want := "./a", "ConfigMap /a-x"
			if i%2 == 1 {
				path, want = "./b", "ConfigMap /y"
			}
			objects, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: path}})
			if err == nil && (len(objects) != 1 || ids(objects)[0] != want) {
				err = fmt.Errorf("%s: got %v", path, ids(objects))
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestCustomOpenAPISchema(t *testing.T) {
	// A kustomization's openapi schema tells kustomize how to merge a
	// custom resource's lists; it must not leak into the next build.
	const schema = `{"definitions": {
  "v1.MyKind": {
    "type": "object",
    "x-kubernetes-group-version-kind": [{"group": "example.com", "kind": "MyKind", "version": "v1"}],
    "properties": {
      "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
      "spec": {"type": "object", "properties": {"containers": {
        "type": "array", "items": {"$ref": "#/definitions/v1.Container"},
        "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"}}}
    }
  },
  "v1.Container": {"type": "object", "properties": {"name": {"type": "string"}, "image": {"type": "string"}}}
}}`
	const kind = "apiVersion: example.com/v1\nkind: MyKind\nmetadata:\n  name: k\nspec:\n  containers:\n  - name: a\n    image: a\n"
	const patch = "apiVersion: example.com/v1\nkind: MyKind\nmetadata:\n  name: k\nspec:\n  containers:\n  - name: b\n    image: b\n"
	root := writeTree(t, map[string]string{
		"custom/kustomization.yaml": "openapi:\n  path: schema.json\nresources: [kind.yaml]\npatches: [{path: patch.yaml}]\n",
		"custom/schema.json":        schema,
		"custom/kind.yaml":          kind,
		"custom/patch.yaml":         patch,
		"plain/kustomization.yaml":  "resources: [kind.yaml]\npatches: [{path: patch.yaml}]\n",
		"plain/kind.yaml":           kind,
		"plain/patch.yaml":          patch,
	})
	containers := func(path string) []string {
		t.Helper()
		objects, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: path}})
		if err != nil {
			t.Fatal(err)
		}
		cs, _, _ := unstructured.NestedSlice(objects[0].Object, "spec", "containers")
		var names []string
		for _, c := range cs {
			names = append(names, c.(map[string]any)["name"].(string))
		}
		return names
	}
	for _, step := range []struct {
		path string
		want []string
	}{
		{"./plain", []string{"b"}},
		{"./custom", []string{"b", "a"}},
		{"./plain", []string{"b"}},
		{"./custom", []string{"b", "a"}},
	} {
		if got := containers(step.path); !reflect.DeepEqual(got, step.want) {
			t.Errorf("%s: containers %v, want %v", step.path, got, step.want)
		}
		// Flux's own build, which resets the schema every time, agrees.
		m, err := fluxkustomize.Build(filesys.MakeFsOnDisk(), filepath.Join(root, step.path))
		if err != nil {
			t.Fatal(err)
		}
		cs, err := m.Resources()[0].GetSlice("spec.containers")
		if err != nil {
			t.Fatal(err)
		}
		var flux []string
		for _, c := range cs {
			flux = append(flux, c.(map[string]any)["name"].(string))
		}
		if !reflect.DeepEqual(flux, step.want) {
			t.Errorf("%s: Flux's build gives %v", step.path, flux)
		}
	}
}
