package helmchart_test

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func TestAChartOrVersionThatDoesNotExistKeepsThePreviousArtifact(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.1.0", nil))
	repo := newHelmRepository(t, ns, "charts", hr.URL, nil)
	obj := newHelmChart(t, ns, "app", helmRepoRef("charts"), "app", "1.0.0", nil)
	stored := *waitRevision(t, obj, "1.0.0").Status.Artifact

	cases := []struct {
		name, chart, version, want string
	}{
		{"a version that does not exist", "app", ">=5.0.0",
			"invalid chart reference: failed to get chart version for remote reference: no 'app' chart with version matching '>=5.0.0' found (available: 1.1.0, 1.0.0)"},
		{"a chart that does not exist", "nope", "",
			"invalid chart reference: failed to get chart version for remote reference: no chart named 'nope' in the index of '" + hr.URL + "/'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			patchChart(t, obj, func(o *sourcev1.HelmChart) { o.Spec.Chart, o.Spec.Version = c.chart, c.version })
			got := waitNotReady(t, obj)
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready.Reason != "InvalidChartReference" || ready.Message != c.want {
				t.Errorf("Ready %s %q\nwant InvalidChartReference %q", ready.Reason, ready.Message, c.want)
			}
			if !conditions.IsStalled(got) || !conditions.IsTrue(got, sourcev1.FetchFailedCondition) {
				t.Errorf("want Stalled and FetchFailed: %s", describe(got))
			}
			if a := got.Status.Artifact; a == nil || a.Digest != stored.Digest || a.Revision != "1.0.0" {
				t.Fatalf("the previous artifact was not kept: %+v", a)
			}
			if !conditions.IsTrue(got, sourcev1.ArtifactInStorageCondition) {
				t.Error("ArtifactInStorage is not True while the previous chart is served")
			}
			testenv.Download(t, got.Status.Artifact)
		})
	}

	// A stalled chart comes back when its repository publishes what it
	// asks for.
	patchChart(t, obj, func(o *sourcev1.HelmChart) { o.Spec.Chart, o.Spec.Version = "app", ">=5.0.0" })
	waitNotReady(t, obj)
	hr.AddChart(t, testenv.WriteChart(t, "app", "5.0.0", nil))
	requestReconcile(t, repo)
	waitRevision(t, obj, "5.0.0")
}

func TestAChartThatNeverExistedHasNoArtifact(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	newHelmRepository(t, ns, "charts", hr.URL, nil)
	got := waitNotReady(t, newHelmChart(t, ns, "nope", helmRepoRef("charts"), "nope", "", nil))
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "no chart named 'nope'") || got.Status.Artifact != nil {
		t.Errorf("Ready %q, artifact %+v", msg, got.Status.Artifact)
	}
}

func TestASourceThatDoesNotExistYetIsWaitedFor(t *testing.T) {
	ns := env.Namespace(t)
	obj := newHelmChart(t, ns, "app", helmRepoRef("later"), "app", "", nil)
	got := waitNotReady(t, obj)
	want := "failed to get source: HelmRepository 'later' not found in namespace '" + ns + "'"
	if r := conditions.Get(got, meta.ReadyCondition); r.Reason != "SourceUnavailable" || r.Message != want {
		t.Errorf("Ready %s %q, want SourceUnavailable %q", r.Reason, r.Message, want)
	}

	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	newHelmRepository(t, ns, "later", hr.URL, nil)
	waitRevision(t, obj, "1.0.0")
}
