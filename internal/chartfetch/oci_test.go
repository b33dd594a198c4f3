package chartfetch_test

import (
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/chartfetch"
	"github.com/weirhq/weir/internal/testenv"
)

func ociRepository(url string, ref sourcev1.OCIRepositoryRef) *sourcev1.OCIRepository {
	return &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "flux-system"},
		Spec:       sourcev1.OCIRepositorySpec{URL: url, Reference: &ref},
	}
}

func TestOCIRepositoryChartIsFetchedOnceThenReadFromTheCache(t *testing.T) {
	ctx := testContext(t)
	reg := testenv.NewRegistry(t, "", "")
	reg.PushChart(t, "charts/app", "1.0.0", testenv.WriteChart(t, "app", "1.0.0", nil))
	f := &chartfetch.Fetcher{Cache: t.TempDir()}
	obj := ociRepository(reg.URL("charts/app"), sourcev1.OCIRepositoryRef{Tag: "1.0.0"})

	ch, err := f.OCIRepository(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	load(t, ch, "app", "1.0.0")
	first := reg.Counts()

	// Again: one HEAD resolves the tag, nothing is downloaded.
	again, err := f.OCIRepository(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	if again.Path != ch.Path || again.Stale != "" {
		t.Errorf("second fetch = %+v, want the cached %s, current", again, ch.Path)
	}
	if c := reg.Counts(); c.ManifestGets != first.ManifestGets || c.BlobGets != first.BlobGets || c.ManifestHeads != first.ManifestHeads+1 {
		t.Errorf("second fetch: requests went from %+v to %+v, want one more HEAD only", first, c)
	}

	// The registry down: the tag's last digest, from the cache, said so.
	reg.Stop()
	down, err := f.OCIRepository(ctx, obj)
	if err != nil {
		t.Fatalf("registry down, chart cached: %v", err)
	}
	if down.Path != ch.Path || !contains(down.Stale, "could not be reached") {
		t.Errorf("registry down: %+v, want the cached chart marked stale", down)
	}
	// Offline: the cache alone, with no word of staleness.
	off := &chartfetch.Fetcher{Cache: f.Cache, Offline: true}
	if got, err := off.OCIRepository(ctx, obj); err != nil || got.Path != ch.Path || got.Stale != "" {
		t.Errorf("offline with the chart cached: %+v, %v", got, err)
	}
	// Offline with an empty cache: unavailable, naming the chart.
	empty := &chartfetch.Fetcher{Cache: t.TempDir(), Offline: true}
	_, err = empty.OCIRepository(ctx, obj)
	wantUnavailable(t, err, "the chart at "+reg.URL("charts/app")+" tag 1.0.0 is not in the chart cache")
	// Online with the registry down and an empty cache: unavailable too.
	_, err = (&chartfetch.Fetcher{Cache: t.TempDir()}).OCIRepository(ctx, obj)
	wantUnavailable(t, err, "is unreachable")
}

func TestOCIRepositoryTagNotInTheRegistryFails(t *testing.T) {
	ctx := testContext(t)
	reg := testenv.NewRegistry(t, "", "")
	reg.PushChart(t, "charts/app", "1.0.0", testenv.WriteChart(t, "app", "1.0.0", nil))
	_, err := (&chartfetch.Fetcher{Cache: t.TempDir()}).OCIRepository(ctx, ociRepository(reg.URL("charts/app"), sourcev1.OCIRepositoryRef{Tag: "9.9.9"}))
	if err == nil || !contains(err.Error(), "the chart at "+reg.URL("charts/app")+" tag 9.9.9 was not found in the registry") {
		t.Fatalf("err = %v", err)
	}
	var u *chartfetch.UnavailableError
	if errorsAs(err, &u) {
		t.Errorf("a tag the registry lacks is a failure, not unavailable: %v", err)
	}
}

func TestOCIRepositoryDigestRefNeedsNoRequest(t *testing.T) {
	ctx := testContext(t)
	reg := testenv.NewRegistry(t, "", "")
	digest := reg.PushChart(t, "charts/app", "1.0.0", testenv.WriteChart(t, "app", "1.0.0", nil))
	f := &chartfetch.Fetcher{Cache: t.TempDir()}
	obj := ociRepository(reg.URL("charts/app"), sourcev1.OCIRepositoryRef{Digest: digest})
	if _, err := f.OCIRepository(ctx, obj); err != nil {
		t.Fatal(err)
	}
	before := reg.Counts()
	ch, err := f.OCIRepository(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	load(t, ch, "app", "1.0.0")
	if c := reg.Counts(); c != before {
		t.Errorf("a cached digest ref made requests: %+v, then %+v", before, c)
	}
}

func TestOCIRepositorySemverPicksTheHighestTag(t *testing.T) {
	ctx := testContext(t)
	reg := testenv.NewRegistry(t, "", "")
	for _, v := range []string{"1.0.0", "1.2.0", "2.0.0"} {
		reg.PushChart(t, "charts/app", v, testenv.WriteChart(t, "app", v, nil))
	}
	f := &chartfetch.Fetcher{Cache: t.TempDir()}
	ch, err := f.OCIRepository(ctx, ociRepository(reg.URL("charts/app"), sourcev1.OCIRepositoryRef{SemVer: "1.x"}))
	if err != nil {
		t.Fatal(err)
	}
	load(t, ch, "app", "1.2.0")
}

func TestOCIRepositoryLayerSelector(t *testing.T) {
	ctx := testContext(t)
	reg := testenv.NewRegistry(t, "", "")
	reg.PushChart(t, "charts/app", "1.0.0", testenv.WriteChart(t, "app", "1.0.0", nil))
	f := &chartfetch.Fetcher{Cache: t.TempDir()}
	obj := ociRepository(reg.URL("charts/app"), sourcev1.OCIRepositoryRef{Tag: "1.0.0"})
	obj.Spec.LayerSelector = &sourcev1.OCILayerSelector{MediaType: testenv.HelmChartMediaType, Operation: sourcev1.OCILayerCopy}
	ch, err := f.OCIRepository(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	load(t, ch, "app", "1.0.0")
	obj.Spec.LayerSelector.MediaType = "application/vnd.example.none"
	if _, err := f.OCIRepository(ctx, obj); err == nil || !contains(err.Error(), "failed to find layer with media type 'application/vnd.example.none'") {
		t.Errorf("a media type no layer has: err = %v", err)
	}
}

func TestHelmRepositoryOfTypeOCI(t *testing.T) {
	ctx := testContext(t)
	reg := testenv.NewRegistry(t, "", "")
	for _, v := range []string{"0.9.0", "1.1.0"} {
		reg.PushChart(t, "charts/app", v, testenv.WriteChart(t, "app", v, nil))
	}
	repo := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: "flux-system"},
		Spec:       sourcev1.HelmRepositorySpec{Type: sourcev1.HelmRepositoryTypeOCI, URL: reg.URL("charts")},
	}
	f := &chartfetch.Fetcher{Cache: t.TempDir()}
	ch, err := f.HelmRepository(ctx, repo, "app", ">=1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	load(t, ch, "app", "1.1.0")
	ch, err = f.HelmRepository(ctx, repo, "app", "0.9.0")
	if err != nil {
		t.Fatal(err)
	}
	load(t, ch, "app", "0.9.0")
	if _, err := f.HelmRepository(ctx, repo, "app", ">=5"); err == nil || !contains(err.Error(), "no 'app' chart with version matching '>=5'") {
		t.Errorf("a range no tag matches: err = %v", err)
	}

	// A secretRef the repository does not hold: unavailable, naming it.
	repo.Spec.SecretRef = &meta.LocalObjectReference{Name: "registry-login"}
	_, err = f.HelmRepository(ctx, repo, "app", "0.9.0")
	wantUnavailable(t, err, "its secretRef, Secret flux-system/registry-login, is not in the repository")
}
