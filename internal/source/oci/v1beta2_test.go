package oci_test

import (
	"context"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/testenv"
)

func TestAV1beta2ObjectIsServedAndReconciled(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	digest := reg.PushFiles(t, "app", "v1.2.3", map[string]string{"a.yaml": "a: 1\n"}, nil)

	// As a repository written for Flux before v1 has it.
	manifest := `
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata:
  name: app
  namespace: ` + ns + `
spec:
  interval: 10m
  url: ` + reg.URL("app") + `
  ref:
    semver: ">=1.0.0"
  layerSelector:
    mediaType: ` + testenv.FluxContentMediaType + `
    operation: extract
`
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("the API server refused a v1beta2 OCIRepository: %v", err)
	}
	got := waitReady(t, obj, "v1.2.3@"+digest)
	if files := artifactFiles(t, got.Status.Artifact); files["a.yaml"] != "a: 1\n" {
		t.Errorf("artifact files: %v", names(files))
	}

	// Read back as v1beta2, the status is there too.
	back := &unstructured.Unstructured{}
	back.SetGroupVersionKind(sourcev1.GroupVersion.WithKind(sourcev1.OCIRepositoryKind))
	back.SetAPIVersion("source.toolkit.fluxcd.io/v1beta2")
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), back); err != nil {
		t.Fatal(err)
	}
	rev, _, _ := unstructured.NestedString(back.Object, "status", "artifact", "revision")
	if back.GetAPIVersion() != "source.toolkit.fluxcd.io/v1beta2" || rev != "v1.2.3@"+digest {
		t.Errorf("read as %s, status.artifact.revision %q", back.GetAPIVersion(), rev)
	}
}
