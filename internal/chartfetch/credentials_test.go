package chartfetch_test

import (
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/weirhq/weir/internal/chartfetch"
	"github.com/weirhq/weir/internal/repo"
	"github.com/weirhq/weir/internal/testenv"
)

// TestCredentialsFromTheRepository logs in with a secretRef the
// repository holds, and leaves the chart unavailable, naming the Secret,
// when it does not.
func TestCredentialsFromTheRepository(t *testing.T) {
	ctx := testContext(t)
	hr := testenv.NewHelmRepo(t, "weir", "s3cret")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	reg := testenv.NewRegistry(t, "weir", "s3cret")
	reg.PushChart(t, "charts/app", "1.0.0", testenv.WriteChart(t, "app", "1.0.0", nil))
	secret := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": "login", "namespace": "flux-system"},
		"stringData": map[string]any{"username": "weir", "password": "s3cret", ".dockerconfigjson": string(reg.DockerConfigJSON("weir", "s3cret"))},
	}}
	secrets := repo.NewValues([]*unstructured.Unstructured{secret}, nil, "the test's objects")
	helmRepo := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: "flux-system"},
		Spec:       sourcev1.HelmRepositorySpec{URL: hr.URL, SecretRef: &meta.LocalObjectReference{Name: "login"}},
	}
	oci := ociRepository(reg.URL("charts/app"), sourcev1.OCIRepositoryRef{Tag: "1.0.0"})
	oci.Spec.SecretRef = &meta.LocalObjectReference{Name: "login"}

	f := &chartfetch.Fetcher{Cache: t.TempDir(), Secrets: secrets}
	ch, err := f.HelmRepository(ctx, helmRepo, "app", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	load(t, ch, "app", "1.0.0")
	ch, err = f.OCIRepository(ctx, oci)
	if err != nil {
		t.Fatal(err)
	}
	load(t, ch, "app", "1.0.0")

	// Offline, the cache needs no credentials.
	off := &chartfetch.Fetcher{Cache: f.Cache, Offline: true}
	if _, err := off.HelmRepository(ctx, helmRepo, "app", "1.0.0"); err != nil {
		t.Errorf("offline, cached, Secret not at hand: %v", err)
	}
	if _, err := off.OCIRepository(ctx, oci); err != nil {
		t.Errorf("offline, cached, Secret not at hand: %v", err)
	}

	none := &chartfetch.Fetcher{Cache: t.TempDir()}
	_, err = none.HelmRepository(ctx, helmRepo, "app", "1.0.0")
	wantUnavailable(t, err, "its secretRef, Secret flux-system/login, is not in the repository")
	_, err = none.OCIRepository(ctx, oci)
	wantUnavailable(t, err, "its secretRef, Secret flux-system/login, is not in the repository")
	// No secretRef where one is needed: unavailable too.
	oci.Spec.SecretRef = nil
	_, err = none.OCIRepository(ctx, oci)
	wantUnavailable(t, err, "refused access")
}
