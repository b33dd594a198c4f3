package helmrepository_test

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func TestFailuresAreReadyFalseWithAClearMessage(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	down := testenv.NewHelmRepo(t, "", "")
	down.Stop()

	cases := []struct {
		name, url, reason, want string
		stalled                 bool
	}{
		{"no index at the URL", hr.URL + "/nothing-here", meta.FailedReason,
			"failed to fetch Helm repository index: no index.yaml at " + hr.URL + "/nothing-here/index.yaml (404 Not Found)", false},
		{"a repository that is down", down.URL, meta.FailedReason,
			"failed to fetch Helm repository index: Helm repository " + strings.TrimPrefix(down.URL, "http://") + " is unreachable", false},
		{"an oci URL for type default", "oci://ghcr.io/stefanprodan/charts", sourcev1.URLInvalidReason,
			"invalid Helm repository URL: 'oci' URL scheme cannot be used with 'default' HelmRepository type", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := waitNotReady(t, newHelmRepository(t, ns, strings.ToLower(strings.ReplaceAll(c.name, " ", "-")), c.url, nil))
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready.Reason != c.reason || !strings.HasPrefix(ready.Message, c.want) {
				t.Errorf("Ready %s %q\nwant %s %q...", ready.Reason, ready.Message, c.reason, c.want)
			}
			if !conditions.IsTrue(got, sourcev1.FetchFailedCondition) {
				t.Error("FetchFailed is not True")
			}
			if conditions.IsStalled(got) != c.stalled {
				t.Errorf("Stalled is %v, want %v", conditions.IsStalled(got), c.stalled)
			}
		})
	}
}

func TestAFailedFetchKeepsTheStoredIndex(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	obj := newHelmRepository(t, ns, "charts", hr.URL, nil)
	stored := *waitReady(t, obj).Status.Artifact

	hr.Stop()
	got := reconcileNow(t, obj)
	if conditions.IsReady(got) {
		t.Fatalf("Ready after the repository went down: %s", describe(got))
	}
	if got.Status.Artifact == nil || got.Status.Artifact.Digest != stored.Digest {
		t.Fatalf("the stored index was dropped: %+v", got.Status.Artifact)
	}
	if !conditions.IsTrue(got, sourcev1.ArtifactInStorageCondition) {
		t.Error("ArtifactInStorage is not True while the index is still served")
	}
	testenv.Download(t, got.Status.Artifact)
	if !env.Manager.Store.Has(got.Status.Artifact) {
		t.Error("the store lost the index")
	}
}
