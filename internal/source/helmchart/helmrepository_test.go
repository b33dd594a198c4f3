package helmchart_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func TestAChartFromAHelmRepositoryIsTheHighestVersionInItsRange(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	want := hr.AddChart(t, testenv.WriteChart(t, "app", "1.1.0", nil))
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.2.0-rc.1", nil))
	hr.AddChart(t, testenv.WriteChart(t, "app", "2.0.0", nil))
	repo := newHelmRepository(t, ns, "charts", hr.URL, nil)

	obj := newHelmChart(t, ns, "app", helmRepoRef("charts"), "app", "1.x", nil)
	got := waitRevision(t, obj, "1.1.0")
	repo = waitObject(t, repo, "the repository", func(*sourcev1.HelmRepository) bool { return true })
	if got.Status.ObservedChartName != "app" || got.Status.ObservedSourceArtifactRevision != repo.Status.Artifact.Revision {
		t.Errorf("observed chart %q from %q; want app from %q", got.Status.ObservedChartName,
			got.Status.ObservedSourceArtifactRevision, repo.Status.Artifact.Revision)
	}
	ready := conditions.Get(got, meta.ReadyCondition)
	if ready.Reason != sourcev1.ChartPullSucceededReason || ready.Message != "pulled 'app' chart with version '1.1.0'" {
		t.Errorf("Ready %s %q", ready.Reason, ready.Message)
	}
	// Stored as it was pulled, byte for byte.
	if body := testenv.Download(t, got.Status.Artifact); !bytes.Equal(body, want) {
		t.Error("the artifact is not the package the repository serves")
	}
	if got.Status.URL != got.Status.Artifact.URL {
		t.Errorf("status.url %q", got.Status.URL)
	}
	ev := waitEvent(t, ns, "app", sourcev1.ChartPullSucceededReason)
	if ev.Message != "pulled 'app' chart with version '1.1.0'" || ev.Annotations["source.toolkit.fluxcd.io/revision"] != "1.1.0" {
		t.Errorf("event %q %v", ev.Message, ev.Annotations)
	}

	// A new version is published: once the repository has the new index,
	// the chart moves without a request of its own.
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.3.0", nil))
	start := time.Now()
	at := requestReconcile(t, repo)
	waitObject(t, repo, "the repository to take the new index", func(o *sourcev1.HelmRepository) bool {
		return o.Status.LastHandledReconcileAt == at
	})
	waitRevision(t, obj, "1.3.0")
	t.Logf("repository request to chart 1.3.0: %s", time.Since(start))
}

func TestWithoutAVersionTheHighestStableVersionIsPicked(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	hr.AddChart(t, testenv.WriteChart(t, "app", "2.0.0", nil))
	hr.AddChart(t, testenv.WriteChart(t, "app", "3.0.0-beta.1", nil))
	newHelmRepository(t, ns, "charts", hr.URL, nil)
	waitRevision(t, newHelmChart(t, ns, "app", helmRepoRef("charts"), "app", "", nil), "2.0.0")
	// An exact version is taken as it is, pre-release or not.
	waitRevision(t, newHelmChart(t, ns, "beta", helmRepoRef("charts"), "app", "3.0.0-beta.1", nil), "3.0.0-beta.1")
}

func TestAChartFromAHelmRepositoryWithBasicAuth(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "weir", "s3cret")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	createSecret(t, ns, "creds", "", map[string][]byte{"username": []byte("weir"), "password": []byte("s3cret")})
	newHelmRepository(t, ns, "charts", hr.URL, func(o *sourcev1.HelmRepository) {
		o.Spec.SecretRef = &meta.LocalObjectReference{Name: "creds"}
	})
	charts := hr.Counts().ChartGets
	waitRevision(t, newHelmChart(t, ns, "app", helmRepoRef("charts"), "app", "1.0.0", nil), "1.0.0")
	if hr.Counts().ChartGets == charts {
		t.Error("the chart was not downloaded from the repository")
	}
}
