package helm_test

import (
	"context"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestOCIChartRevisionsAreRecordedAsHelmControllerRecordsThem installs a
// chart from an OCIRepository and checks every place its revision shows
// against helm-controller's: the chart version gets "+" and the first 12
// hex digits of the OCI manifest digest (status.lastAttemptedRevision,
// history chartVersion, the release in Helm's storage, .Chart.Version in
// templates, the events' revision), and the manifest digest is
// lastAttemptedRevisionDigest and the history's ociDigest. The same tag
// pushed again with other content is a new version: the release is
// upgraded.
func TestOCIChartRevisionsAreRecordedAsHelmControllerRecordsThem(t *testing.T) {
	f := newFixture(t, "1.0.0")
	hr := f.release("rev", "", nil)
	got := f.waitReady(hr, "1.0.0")
	manifest := f.digests["1.0.0"]
	version := "1.0.0+" + strings.TrimPrefix(manifest, "sha256:")[:12]
	f.checkRevision(got, version, manifest, 1)

	// The OCIRepository's revision is "<tag>@<manifest digest>".
	src := &sourcev1.OCIRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(f.source), src); err != nil {
		t.Fatal(err)
	}
	if want := "1.0.0@" + manifest; src.Status.Artifact == nil || src.Status.Artifact.Revision != want {
		t.Fatalf("OCIRepository revision %v, want %s", src.Status.Artifact, want)
	}

	// 1.0.0 again, with another default greeting.
	files := chartFiles("1.0.0")
	files["values.yaml"] = strings.Replace(files["values.yaml"], "greeting: hello", "greeting: hello-again", 1)
	f.push("1.0.0", files)
	f.refreshSource()
	manifest2 := f.digests["1.0.0"]
	version2 := "1.0.0+" + strings.TrimPrefix(manifest2, "sha256:")[:12]
	got = f.wait(hr, 90*time.Second, "to upgrade to "+version2, func(h *helmv2.HelmRelease) bool {
		l := h.Status.History.Latest()
		return conditions.IsReady(h) && l != nil && l.ChartVersion == version2 && l.Status == "deployed"
	})
	f.checkRevision(got, version2, manifest2, 2)
	if d := configData(t, f.ns, "rev-config"); d["greeting"] != "hello-again" {
		t.Errorf("the content pushed again was not installed: %v", d)
	}
	if prev := got.Status.History[1]; prev.ChartVersion != version || prev.OCIDigest != manifest {
		t.Errorf("the previous revision's history entry is %s/%s, want %s/%s", prev.ChartVersion, prev.OCIDigest, version, manifest)
	}
}

// checkRevision checks the revision of a HelmRelease installed from the
// fixture's OCIRepository, at release revision n.
func (f *fixture) checkRevision(got *helmv2.HelmRelease, version, manifest string, n int) {
	t := f.t
	t.Helper()
	if s := got.Status; s.LastAttemptedRevision != version || s.LastAttemptedRevisionDigest != manifest {
		t.Errorf("lastAttemptedRevision %q, lastAttemptedRevisionDigest %q; want %q, %q", s.LastAttemptedRevision, s.LastAttemptedRevisionDigest, version, manifest)
	}
	if l := got.Status.History.Latest(); l.Version != n || l.ChartVersion != version || l.OCIDigest != manifest {
		t.Errorf("history[0]: v%d chartVersion %q ociDigest %q; want v%d %q %q", l.Version, l.ChartVersion, l.OCIDigest, n, version, manifest)
	}
	// helm list's CHART column, and .Chart.Version in the templates.
	var found bool
	for _, r := range helmReleases(t, f.ns) {
		if r.Name == got.Name && r.Version == n {
			found = true
			if r.Chart.Metadata.Version != version {
				t.Errorf("the release in Helm's storage has chart version %q, want %q", r.Chart.Metadata.Version, version)
			}
		}
	}
	if !found {
		t.Errorf("no revision %d of %s in Helm's storage", n, got.Name)
	}
	if d := configData(t, f.ns, got.Name+"-config"); d["version"] != version {
		t.Errorf(".Chart.Version rendered %q, want %q", d["version"], version)
	}
	// The events carry the revision and the OCI digest, as Flux's do.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var events corev1.EventList
		if err := env.Client.List(context.Background(), &events, client.InNamespace(f.ns)); err != nil {
			t.Fatal(err)
		}
		for _, e := range events.Items {
			a := e.Annotations
			if e.InvolvedObject.Name == got.Name && e.Type == corev1.EventTypeNormal &&
				a["helm.toolkit.fluxcd.io/revision"] == version && a["helm.toolkit.fluxcd.io/oci-digest"] == manifest {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("no Normal event of %s annotated with revision %s and oci-digest %s", got.Name, version, manifest)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
