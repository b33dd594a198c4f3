package bucket_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
)

func TestABucketIsStoredWithFluxsRevision(t *testing.T) {
	ns := env.Namespace(t)
	objects := map[string]string{
		"apps/a.yaml":   "a: 1\n",
		"apps/b.yaml":   "b: 2\n",
		"README.md":     "# manifests\n",
		"img/logo.png":  "not really a png",
		"deep/x/y/z.md": "z",
	}
	s3 := newServer(t, ns, "manifests", objects)
	obj := newBucket(t, ns, "manifests", s3, "manifests", nil)

	want := fluxRevision(s3.ETags(t, "manifests", ""))
	got := waitReady(t, obj, want)
	if !strings.HasPrefix(want, "sha256:") || len(want) != len("sha256:")+64 {
		t.Fatalf("revision %q is not sha256:<hex>", want)
	}
	// Everything downloaded goes in, Flux's default exclusions (images)
	// included: a Bucket is filtered by its own rules only.
	if files := artifactFiles(t, got.Status.Artifact); !reflect.DeepEqual(files, objects) {
		t.Errorf("artifact holds %v, want %v", names(files), names(objects))
	}
	ready := conditions.Get(got, meta.ReadyCondition)
	if ready.Reason != meta.SucceededReason || ready.Message != "stored artifact: revision '"+want+"'" {
		t.Errorf("Ready %s %q", ready.Reason, ready.Message)
	}
	if !conditions.IsTrue(got, sourcev1.ArtifactInStorageCondition) || got.Status.URL == "" {
		t.Errorf("ArtifactInStorage or status.url missing: %s, url %q", describe(got), got.Status.URL)
	}
	ev := waitEvent(t, ns, "manifests", "NewArtifact")
	if ev.Message != "stored artifact with 5 fetched files from 'manifests' bucket" {
		t.Errorf("NewArtifact event %q", ev.Message)
	}
}

func TestANewObjectGivesANewRevisionOnRequest(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", map[string]string{"a.yaml": "a: 1\n"})
	obj := newBucket(t, ns, "b", s3, "bkt", nil)
	first := waitReady(t, obj, fluxRevision(s3.ETags(t, "bkt", "")))

	// Nothing changed: the same revision, the same artifact.
	again := reconcileNow(t, obj)
	if again.Status.Artifact.Revision != first.Status.Artifact.Revision || again.Status.Artifact.Digest != first.Status.Artifact.Digest {
		t.Errorf("an unchanged bucket gave a new artifact: %s", describe(again))
	}

	s3.PutObjects(t, "bkt", map[string]string{"b.yaml": "b: 2\n"})
	got := reconcileNow(t, obj)
	want := fluxRevision(s3.ETags(t, "bkt", ""))
	if got.Status.Artifact.Revision != want || want == first.Status.Artifact.Revision {
		t.Fatalf("revision %s after a new object, want %s", got.Status.Artifact.Revision, want)
	}
	if files := artifactFiles(t, got.Status.Artifact); !reflect.DeepEqual(names(files), []string{"a.yaml", "b.yaml"}) {
		t.Errorf("artifact holds %v", names(files))
	}
}

func TestANewObjectGivesANewRevisionAtTheNextInterval(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", map[string]string{"a.yaml": "a: 1\n"})
	obj := newBucket(t, ns, "b", s3, "bkt", func(b *sourcev1.Bucket) { b.Spec.Interval.Duration = 2 * time.Second })
	waitReady(t, obj, fluxRevision(s3.ETags(t, "bkt", "")))

	s3.PutObjects(t, "bkt", map[string]string{"b.yaml": "b: 2\n"})
	start := time.Now()
	waitReady(t, obj, fluxRevision(s3.ETags(t, "bkt", "")))
	t.Logf("new revision %s after the object was written", time.Since(start).Round(time.Millisecond))
}

func TestASuspendedBucketIsNotFetched(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", map[string]string{"a.yaml": "a: 1\n"})
	before := s3.Requests()
	obj := newBucket(t, ns, "b", s3, "bkt", func(b *sourcev1.Bucket) { b.Spec.Suspend = true })
	requestReconcile(t, obj)
	time.Sleep(2 * time.Second)
	if n := s3.Requests() - before; n != 0 {
		t.Errorf("a suspended Bucket made %d requests", n)
	}
	if got := waitFor(t, 5*time.Second, "the Bucket", obj, func(*sourcev1.Bucket) bool { return true }); got.Status.Artifact != nil {
		t.Errorf("a suspended Bucket has an artifact: %s", describe(got))
	}
}
