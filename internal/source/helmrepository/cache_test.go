package helmrepository_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fluxcd/pkg/runtime/conditions"

	"github.com/weirhq/weir/internal/testenv"
)

func TestAnUnchangedIndexIsAskedForConditionallyAndNotStoredAgain(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	obj := newHelmRepository(t, ns, "charts", hr.URL, nil)
	before := *waitReady(t, obj).Status.Artifact
	counts := hr.Counts()

	got := reconcileNow(t, obj)
	after := hr.Counts()
	if n := after.IndexGets - counts.IndexGets; n != 1 {
		t.Errorf("%d index requests for one reconcile", n)
	}
	if n := after.IndexNotModified - counts.IndexNotModified; n != 1 {
		t.Errorf("the index was not asked for with its ETag: %d answers 304", n)
	}
	a := got.Status.Artifact
	if !conditions.IsReady(got) || a.Digest != before.Digest || !a.LastUpdateTime.Equal(&before.LastUpdateTime) {
		t.Errorf("an unchanged index changed the artifact: %+v, was %+v", a, before)
	}

	// A new chart: the ETag no longer matches, the new index is stored.
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.1.0", nil))
	got = reconcileNow(t, obj)
	if got.Status.Artifact.Revision != sha256Revision(hr.Index()) {
		t.Fatalf("the changed index was not stored: %s", describe(got))
	}
}

func TestWithoutCacheHeadersAnUnchangedIndexIsKnownByItsDigest(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.DisableCacheHeaders()
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	obj := newHelmRepository(t, ns, "charts", hr.URL, nil)
	before := *waitReady(t, obj).Status.Artifact
	counts := hr.Counts()

	for range 2 {
		got := reconcileNow(t, obj)
		a := got.Status.Artifact
		if !conditions.IsReady(got) || a.Digest != before.Digest || !a.LastUpdateTime.Equal(&before.LastUpdateTime) {
			t.Fatalf("an unchanged index changed the artifact: %+v, was %+v", a, before)
		}
	}
	after := hr.Counts()
	if after.IndexGets-counts.IndexGets != 2 || after.IndexNotModified != 0 {
		t.Errorf("index requests %+v -> %+v: want two full GETs", counts, after)
	}
	// Nothing was written: the folder holds the one index.
	entries, err := os.ReadDir(filepath.Dir(env.Manager.Store.Path(&before)))
	if err != nil || len(entries) != 1 {
		t.Errorf("the object's folder holds %v (%v), want the one index", entries, err)
	}
	info, err := os.Stat(env.Manager.Store.Path(&before))
	if err != nil || info.ModTime().After(before.LastUpdateTime.Add(1e9)) {
		t.Errorf("the stored index was rewritten: %v, %v", info.ModTime(), err)
	}
}
