package oci_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/weirhq/weir/internal/testenv"
)

// writeChart writes a small Helm chart into a fresh folder.
func writeChart(t *testing.T, chartName, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), chartName)
	files := map[string]string{
		"Chart.yaml":            "apiVersion: v2\nname: " + chartName + "\nversion: " + version + "\ndescription: a test chart\n",
		"values.yaml":           "message: hello\n",
		"templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  message: {{ .Values.message }}\n",
	}
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLayerSelectorCopyKeepsAHelmChartAsItIs(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	digest := reg.PushChart(t, "charts/podinfo", "6.5.0", writeChart(t, "podinfo", "6.5.0"))

	obj := newOCIRepository(t, ns, "podinfo", reg.URL("charts/podinfo"), all(withTag("6.5.0"), func(o *sourcev1.OCIRepository) {
		o.Spec.LayerSelector = &sourcev1.OCILayerSelector{MediaType: testenv.HelmChartMediaType, Operation: sourcev1.OCILayerCopy}
	}))
	got := waitReady(t, obj, "6.5.0@"+digest)

	// The artifact is the chart layer itself, byte for byte.
	ref, err := name.ParseReference(reg.Host + "/charts/podinfo@" + digest)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Artifact.Digest != m.Layers[0].Digest.String() {
		t.Errorf("artifact digest %s, chart layer %s: the layer was not stored as it is", got.Status.Artifact.Digest, m.Layers[0].Digest)
	}
	files := artifactFiles(t, got.Status.Artifact)
	if files["podinfo/Chart.yaml"] == "" || files["podinfo/templates/config.yaml"] == "" {
		t.Errorf("the stored chart holds %v", names(files))
	}
	if got.Status.Artifact.Metadata["org.opencontainers.image.title"] != "podinfo" {
		t.Errorf("metadata %v lacks the chart's annotations", got.Status.Artifact.Metadata)
	}
	if sel := got.Status.ObservedLayerSelector; sel == nil || sel.Operation != sourcev1.OCILayerCopy {
		t.Errorf("observedLayerSelector = %+v", sel)
	}

	// Without a selector, the first layer is extracted and re-archived.
	extracted := newOCIRepository(t, ns, "extracted", reg.URL("charts/podinfo"), withTag("6.5.0"))
	got = waitReady(t, extracted, "6.5.0@"+digest)
	if files := artifactFiles(t, got.Status.Artifact); files["podinfo/values.yaml"] != "message: hello\n" {
		t.Errorf("the extracted chart holds %v", names(files))
	}

	// A media type the artifact does not have.
	missing := newOCIRepository(t, ns, "missing", reg.URL("charts/podinfo"), all(withTag("6.5.0"), func(o *sourcev1.OCIRepository) {
		o.Spec.LayerSelector = &sourcev1.OCILayerSelector{MediaType: testenv.FluxContentMediaType}
	}))
	got = waitNotReady(t, missing)
	ready := conditions.Get(got, meta.ReadyCondition)
	want := "failed to find layer with media type '" + testenv.FluxContentMediaType + "' in artifact"
	if ready.Reason != sourcev1.OCILayerOperationFailedReason || ready.Message != want {
		t.Errorf("Ready = %s: %q, want %s: %q", ready.Reason, ready.Message, sourcev1.OCILayerOperationFailedReason, want)
	}
}

func TestChangingTheLayerSelectorRebuildsTheArtifact(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	digest := reg.PushChart(t, "charts/podinfo", "6.5.0", writeChart(t, "podinfo", "6.5.0"))
	obj := newOCIRepository(t, ns, "podinfo", reg.URL("charts/podinfo"), withTag("6.5.0"))
	extracted := waitReady(t, obj, "6.5.0@"+digest).Status.Artifact

	got := waitFor(t, 0, "the object", obj, func(*sourcev1.OCIRepository) bool { return true })
	got.Spec.LayerSelector = &sourcev1.OCILayerSelector{MediaType: testenv.HelmChartMediaType, Operation: sourcev1.OCILayerCopy}
	if err := env.Client.Update(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	copied := waitFor(t, 30*time.Second, "a copied artifact", obj, func(o *sourcev1.OCIRepository) bool {
		return conditions.IsReady(o) && o.Status.ObservedGeneration == o.Generation && o.Status.Artifact.Digest != extracted.Digest
	})
	if copied.Status.Artifact.Revision != extracted.Revision {
		t.Errorf("revision changed from %s to %s for the same manifest", extracted.Revision, copied.Status.Artifact.Revision)
	}
}
