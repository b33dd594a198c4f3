package chartfetch_test

import (
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/chartfetch"
	"github.com/weirhq/weir/internal/testenv"
)

func TestHelmRepositoryChartIsFetchedOnceThenReadFromTheCache(t *testing.T) {
	ctx := testContext(t)
	hr := testenv.NewHelmRepo(t, "", "")
	for _, v := range []string{"1.0.0", "1.4.0", "2.0.0"} {
		hr.AddChart(t, testenv.WriteChart(t, "app", v, nil))
	}
	repo := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: "flux-system"},
		Spec:       sourcev1.HelmRepositorySpec{URL: hr.URL},
	}
	f := &chartfetch.Fetcher{Cache: t.TempDir()}
	ch, err := f.HelmRepository(ctx, repo, "app", "~1.0")
	if err != nil {
		t.Fatal(err)
	}
	load(t, ch, "app", "1.0.0")
	ch, err = f.HelmRepository(ctx, repo, "app", "1.x")
	if err != nil {
		t.Fatal(err)
	}
	load(t, ch, "app", "1.4.0")
	first := hr.Counts()
	if first.ChartGets != 2 {
		t.Errorf("chart downloads = %d, want 2", first.ChartGets)
	}

	// Again: the index is asked for only if it changed, the chart comes
	// from the cache.
	if _, err := f.HelmRepository(ctx, repo, "app", "1.x"); err != nil {
		t.Fatal(err)
	}
	if c := hr.Counts(); c.ChartGets != first.ChartGets || c.IndexNotModified != first.IndexNotModified+1 {
		t.Errorf("second fetch: requests went from %+v to %+v, want one index request answered 304", first, c)
	}

	hr.Stop()
	down, err := f.HelmRepository(ctx, repo, "app", "1.x")
	if err != nil {
		t.Fatalf("repository down, chart cached: %v", err)
	}
	if down.Path != ch.Path || !contains(down.Stale, "could not be reached") {
		t.Errorf("repository down: %+v, want the cached chart marked stale", down)
	}
	off := &chartfetch.Fetcher{Cache: f.Cache, Offline: true}
	if got, err := off.HelmRepository(ctx, repo, "app", "1.x"); err != nil || got.Path != ch.Path || got.Stale != "" {
		t.Errorf("offline with the chart cached: %+v, %v", got, err)
	}
	_, err = (&chartfetch.Fetcher{Cache: t.TempDir(), Offline: true}).HelmRepository(ctx, repo, "app", "1.x")
	wantUnavailable(t, err, "the index of "+hr.URL+"/ is not in the chart cache")
	_, err = (&chartfetch.Fetcher{Cache: t.TempDir()}).HelmRepository(ctx, repo, "app", "1.x")
	wantUnavailable(t, err, "is unreachable")
}

func TestHelmRepositoryVersionNotInTheIndexFails(t *testing.T) {
	ctx := testContext(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	repo := &sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: "flux-system"}, Spec: sourcev1.HelmRepositorySpec{URL: hr.URL}}
	_, err := (&chartfetch.Fetcher{Cache: t.TempDir()}).HelmRepository(ctx, repo, "app", ">=3")
	if err == nil || !contains(err.Error(), "no 'app' chart with version matching '>=3' found (available: 1.0.0)") {
		t.Errorf("err = %v", err)
	}
	var u *chartfetch.UnavailableError
	if errorsAs(err, &u) {
		t.Errorf("a version the index lacks is a failure, not unavailable: %v", err)
	}
}
