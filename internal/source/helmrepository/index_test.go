package helmrepository_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func TestTheIndexIsFetchedAndStored(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.1.0", nil))
	hr.AddChart(t, testenv.WriteChart(t, "other", "0.1.0", nil))

	obj := newHelmRepository(t, ns, "charts", hr.URL, nil)
	got := waitReady(t, obj)

	// The revision is the digest of the index as served.
	want := sha256Revision(hr.Index())
	a := got.Status.Artifact
	if a.Revision != want {
		t.Errorf("artifact revision %s, want the digest of the served index %s", a.Revision, want)
	}
	if !strings.HasPrefix(a.Path, "helmrepository/"+ns+"/charts/") || !strings.HasSuffix(a.Path, ".yaml") {
		t.Errorf("artifact path %q", a.Path)
	}
	if got.Status.URL != a.URL {
		t.Errorf("status.url %q, artifact URL %q", got.Status.URL, a.URL)
	}
	ready := conditions.Get(got, meta.ReadyCondition)
	if msg := "stored artifact: revision '" + want + "'"; ready.Reason != meta.SucceededReason || ready.Message != msg {
		t.Errorf("Ready %s %q, want Succeeded %q", ready.Reason, ready.Message, msg)
	}
	if !conditions.IsTrue(got, "ArtifactInStorage") {
		t.Error("ArtifactInStorage is not True")
	}

	// The artifact is the index, as JSON (still YAML), which Helm reads.
	var idx repo.IndexFile
	if err := json.Unmarshal(testenv.Download(t, a), &idx); err != nil {
		t.Fatalf("the artifact is not a JSON index: %v", err)
	}
	if n := len(idx.Entries["app"]); n != 2 || idx.Entries["app"][0].Version != "1.1.0" {
		t.Errorf("stored index has app %v; want 1.1.0 then 1.0.0", idx.Entries["app"])
	}

	ev := waitEvent(t, ns, "charts", "NewArtifact")
	if !strings.HasPrefix(ev.Message, "stored fetched index of size ") || !strings.HasSuffix(ev.Message, "from '"+hr.URL+"/'") {
		t.Errorf("NewArtifact event %q", ev.Message)
	}
	if ev.Annotations["source.toolkit.fluxcd.io/revision"] != want {
		t.Errorf("event annotations %v", ev.Annotations)
	}
}

func TestANewChartGivesANewRevision(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	obj := newHelmRepository(t, ns, "charts", hr.URL, nil)
	first := waitReady(t, obj).Status.Artifact

	hr.AddChart(t, testenv.WriteChart(t, "app", "2.0.0", nil))
	got := reconcileNow(t, obj)
	if !conditions.IsReady(got) || got.Status.Artifact.Revision != sha256Revision(hr.Index()) || got.Status.Artifact.Revision == first.Revision {
		t.Fatalf("after a new chart: %s; want the new index %s", describe(got), sha256Revision(hr.Index()))
	}
	var idx repo.IndexFile
	if err := json.Unmarshal(testenv.Download(t, got.Status.Artifact), &idx); err != nil {
		t.Fatal(err)
	}
	if idx.Entries["app"][0].Version != "2.0.0" {
		t.Errorf("new index has app %v", idx.Entries["app"])
	}
}
