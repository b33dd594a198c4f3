package oci_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/weirhq/weir/internal/testenv"
)

func TestPullByTagStoresTheLayerWithFluxsStatus(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	digest := reg.PushFiles(t, "app", "v1.0.0", map[string]string{
		"apps/deploy.yaml": "kind: Deployment\n",
		"README.md":        "# app\n",
	}, map[string]string{
		"org.opencontainers.image.source":   "https://github.com/weirhq/app",
		"org.opencontainers.image.revision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
	})
	obj := newOCIRepository(t, ns, "app", reg.URL("app"), withTag("v1.0.0"))
	got := waitReady(t, obj, "v1.0.0@"+digest)

	files := artifactFiles(t, got.Status.Artifact)
	if files["apps/deploy.yaml"] != "kind: Deployment\n" || files["README.md"] != "# app\n" {
		t.Errorf("artifact files: %v", names(files))
	}
	a := got.Status.Artifact
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(a.Digest) {
		t.Errorf("artifact digest %q is not sha256:<hex>", a.Digest)
	}
	if !strings.HasPrefix(a.URL, env.Manager.StorageURL+"/ocirepository/"+ns+"/app/") || got.Status.URL != a.URL {
		t.Errorf("artifact URL %q, status.url %q: want both served by %s", a.URL, got.Status.URL, env.Manager.StorageURL)
	}
	if a.LastUpdateTime.IsZero() || a.Size == nil || a.Path == "" {
		t.Errorf("artifact misses lastUpdateTime, size or path: %+v", a)
	}
	if a.Metadata["org.opencontainers.image.source"] != "https://github.com/weirhq/app" {
		t.Errorf("artifact metadata %v lacks the manifest annotations", a.Metadata)
	}
	want := "stored artifact for digest 'v1.0.0@" + digest + "'"
	for _, c := range []string{meta.ReadyCondition, sourcev1.ArtifactInStorageCondition} {
		cond := conditions.Get(got, c)
		if cond == nil || cond.Status != "True" || cond.Reason != meta.SucceededReason || cond.Message != want || cond.ObservedGeneration != got.Generation {
			t.Errorf("condition %s = %+v, want True/Succeeded %q", c, cond, want)
		}
	}
	for _, c := range []string{meta.ReconcilingCondition, meta.StalledCondition, sourcev1.FetchFailedCondition} {
		if conditions.Has(got, c) {
			t.Errorf("a ready object still has condition %s", c)
		}
	}
	if !controllerutil.ContainsFinalizer(got, sourcev1.SourceFinalizer) {
		t.Errorf("finalizer %s missing: %v", sourcev1.SourceFinalizer, got.Finalizers)
	}
	ev := waitEvent(t, ns, "app", "NewArtifact")
	wantEvent := "stored artifact with revision 'v1.0.0@" + digest + "' from '" + reg.URL("app") +
		"', origin source 'https://github.com/weirhq/app', origin revision 'main@sha1:0123456789abcdef0123456789abcdef01234567'"
	if ev.Message != wantEvent || ev.Type != "Normal" {
		t.Errorf("event = %s %q, want Normal %q", ev.Type, ev.Message, wantEvent)
	}
	if ev.Annotations[sourcev1.GroupVersion.Group+"/revision"] != a.Revision || ev.Annotations[sourcev1.GroupVersion.Group+"/digest"] != a.Digest {
		t.Errorf("event annotations %v miss the revision or digest", ev.Annotations)
	}
}

func TestEachRefKindResolvesToItsManifest(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	push := func(tag, v string) string {
		return reg.PushFiles(t, "app", tag, map[string]string{"v.txt": v}, nil)
	}
	v100 := push("v1.0.0", "1.0.0")
	v120 := push("1.2.0", "1.2.0") // no "v": both spellings count
	v130rc := push("v1.3.0-rc.1", "1.3.0-rc.1")
	v200 := push("v2.0.0", "2.0.0")
	latest := push("latest", "latest")
	push("v1.4", "not strict semver")
	stable120 := push("v1.2.0-stable", "1.2.0-stable")

	cases := []struct {
		name     string
		ref      *sourcev1.OCIRepositoryRef
		revision string
		content  string
	}{
		{"no-ref-is-latest", nil, "latest@" + latest, "latest"},
		{"tag", &sourcev1.OCIRepositoryRef{Tag: "v1.0.0"}, "v1.0.0@" + v100, "1.0.0"},
		{"semver-highest-in-range", &sourcev1.OCIRepositoryRef{SemVer: ">=1.0.0 <2.0.0"}, "1.2.0@" + v120, "1.2.0"},
		{"semver-with-prereleases", &sourcev1.OCIRepositoryRef{SemVer: ">=1.0.0-0 <2.0.0"}, "v1.3.0-rc.1@" + v130rc, "1.3.0-rc.1"},
		{"semver-filter", &sourcev1.OCIRepositoryRef{SemVer: ">=1.0.0-0", SemverFilter: ".*-stable$"}, "v1.2.0-stable@" + stable120, "1.2.0-stable"},
		{"digest-wins-over-tag", &sourcev1.OCIRepositoryRef{Digest: v200, Tag: "v1.0.0"}, v200, "2.0.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := newOCIRepository(t, ns, tc.name, reg.URL("app"), func(o *sourcev1.OCIRepository) { o.Spec.Reference = tc.ref })
			got := waitReady(t, obj, tc.revision)
			if files := artifactFiles(t, got.Status.Artifact); files["v.txt"] != tc.content {
				t.Errorf("artifact holds v.txt = %q, want %q", files["v.txt"], tc.content)
			}
		})
	}
}

func TestIgnoreRulesShapeTheArtifact(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	digest := reg.PushFiles(t, "app", "v1", map[string]string{
		"apps/deploy.yaml":   "kind: Deployment\n",
		"apps/notes.md":      "notes\n",
		"docs/readme.txt":    "docs\n",
		"keep/.sourceignore": "*.key\n",
		"keep/tls.key":       "key\n",
		"keep/keep.yaml":     "keep: true\n",
	}, nil)
	ignore := "/docs/\n*.md\n"
	obj := newOCIRepository(t, ns, "app", reg.URL("app"), all(withTag("v1"), func(o *sourcev1.OCIRepository) { o.Spec.Ignore = &ignore }))
	got := waitReady(t, obj, "v1@"+digest)
	files := artifactFiles(t, got.Status.Artifact)
	for _, want := range []string{"apps/deploy.yaml", "keep/keep.yaml"} {
		if _, ok := files[want]; !ok {
			t.Errorf("artifact lacks %s: %v", want, names(files))
		}
	}
	for _, gone := range []string{"apps/notes.md", "docs/readme.txt", "keep/tls.key"} {
		if _, ok := files[gone]; ok {
			t.Errorf("artifact holds ignored %s", gone)
		}
	}
	if got.Status.ObservedIgnore == nil || *got.Status.ObservedIgnore != ignore {
		t.Errorf("observedIgnore = %v, want %q", got.Status.ObservedIgnore, ignore)
	}
}
