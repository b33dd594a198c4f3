package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
)

func TestGeneratedKustomization(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		spec  kustomizev1.KustomizationSpec
		want  []string
	}{{
		name: "every manifest under the path",
		files: map[string]string{
			"apps/a.yaml":          fmt.Sprintf(configMap, "a"),
			"apps/sub/b.yml":       fmt.Sprintf(configMap, "b"),
			"apps/sub/deep/c.yaml": fmt.Sprintf(configMap, "c") + "---\n" + fmt.Sprintf(configMap, "c2"),
			"apps/notes.txt":       "not a manifest",
			"apps/README.md":       "# not a manifest",
		},
		want: []string{"ConfigMap /a", "ConfigMap /b", "ConfigMap /c", "ConfigMap /c2"},
	}, {
		name: "a nested kustomization is one resource",
		files: map[string]string{
			"apps/a.yaml":                    fmt.Sprintf(configMap, "a"),
			"apps/nested/kustomization.yaml": "resources: [listed.yaml]\nnamePrefix: nested-\n",
			"apps/nested/listed.yaml":        fmt.Sprintf(configMap, "listed"),
			"apps/nested/not-listed.yaml":    fmt.Sprintf(configMap, "not-listed"),
			"apps/other/Kustomization":       "resources: [x.yaml]\n",
			"apps/other/x.yaml":              fmt.Sprintf(configMap, "x"),
			"apps/other/deeper/ignored.yaml": fmt.Sprintf(configMap, "ignored"),
		},
		want: []string{"ConfigMap /a", "ConfigMap /nested-listed", "ConfigMap /x"},
	}, {
		name: "the spec applies to generated kustomizations too",
		files: map[string]string{
			"apps/a.yaml": fmt.Sprintf(configMap, "a"),
		},
		spec: kustomizev1.KustomizationSpec{
			TargetNamespace: "team",
			NamePrefix:      "p-",
			Patches: []kustomize.Patch{{
				Patch:  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  patched: \"yes\"\n",
				Target: &kustomize.Selector{Kind: "ConfigMap"},
			}},
		},
		want: []string{"ConfigMap team/p-a"},
	}, {
		name: "an empty folder renders nothing",
		files: map[string]string{
			"apps/notes.txt": "nothing here",
		},
		want: []string{},
	}, {
		name: "an existing kustomization with no resources",
		files: map[string]string{
			"apps/kustomization.yaml": "configMapGenerator:\n- name: gen\n  literals: [a=b]\ngeneratorOptions:\n  disableNameSuffixHash: true\n",
		},
		want: []string{"ConfigMap /gen"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Path = "./apps"
			root := writeTree(t, tc.files)
			objects, err := Build(context.Background(), Options{Root: root, Spec: tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(objects); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKustomizationWithoutResourcesKeepsOrigins(t *testing.T) {
	// Flux's Generator sets buildMetadata: [originAnnotations] on a
	// kustomization.yaml without resources (to avoid kustomize's "empty
	// kustomization" error), so the objects keep kustomize's origin
	// annotation. weir renders the same objects.
	root := writeTree(t, map[string]string{
		"kustomization.yaml": "configMapGenerator:\n- name: gen\n  literals: [a=b]\n",
	})
	objects, err := Build(context.Background(), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := objects[0].GetAnnotations()["config.kubernetes.io/origin"]; !ok {
		t.Errorf("annotations %v", objects[0].GetAnnotations())
	}
}

func TestGeneratedKustomizationStaysInMemory(t *testing.T) {
	root := writeTree(t, map[string]string{"apps/a.yaml": fmt.Sprintf(configMap, "a")})
	if _, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: "./apps"}}); err != nil {
		t.Fatal(err)
	}
	tree := listTree(t, root)
	if want := []string{"apps/a.yaml"}; !reflect.DeepEqual(tree, want) {
		t.Errorf("the source changed: %v", tree)
	}
}

func TestGeneratedKustomizationRefusesSymlinksOut(t *testing.T) {
	outside := writeTree(t, map[string]string{"cm.yaml": fmt.Sprintf(configMap, "outside")})
	root := writeTree(t, map[string]string{"apps/a.yaml": fmt.Sprintf(configMap, "a")})
	if err := os.Symlink(filepath.Join(outside, "cm.yaml"), filepath.Join(root, "apps", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	objects, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: "./apps"}})
	wantError(t, err, StepBuild, "apps/link.yaml", "is not in or below")
	if objects != nil || strings.Contains(err.Error(), outside) {
		t.Errorf("objects %v, error %s", ids(objects), err)
	}
}

func TestGeneratedKustomizationNamesTheBadFile(t *testing.T) {
	root := writeTree(t, map[string]string{
		"apps/good.yaml":    fmt.Sprintf(configMap, "a"),
		"apps/sub/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n",
	})
	_, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: "./apps"}})
	wantError(t, err, StepBuild, "apps/sub/bad.yaml")
}
