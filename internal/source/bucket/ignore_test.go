package bucket_test

import (
	"reflect"
	"strings"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
)

func TestOnlyObjectsUnderThePrefixAreFetched(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", map[string]string{
		"staging/app.yaml":    "staging",
		"production/app.yaml": "production",
		"stagingish.yaml":     "not under staging/",
	})
	obj := newBucket(t, ns, "b", s3, "bkt", func(b *sourcev1.Bucket) { b.Spec.Prefix = "staging/" })
	got := waitReady(t, obj, fluxRevision(s3.ETags(t, "bkt", "staging/")))
	// Keys keep their prefix in the artifact, as in Flux.
	if files := artifactFiles(t, got.Status.Artifact); !reflect.DeepEqual(files, map[string]string{"staging/app.yaml": "staging"}) {
		t.Errorf("artifact holds %v", names(files))
	}
}

func TestIgnoreRulesOfTheSpecAndOfTheBucketAreHonoured(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", map[string]string{
		".sourceignore":     "drafts/\n",
		"apps/app.yaml":     "app",
		"apps/README.md":    "readme",
		"apps/keep.md":      "kept by a negation",
		"drafts/next.yaml":  "draft",
		"sub/.sourceignore": "*.yaml\n",
		"sub/config.yaml":   "a nested .sourceignore is an ordinary object for a Bucket",
	})
	ignore := "*.md\n!apps/keep.md\n"
	obj := newBucket(t, ns, "b", s3, "bkt", func(b *sourcev1.Bucket) { b.Spec.Ignore = &ignore })

	etags := s3.ETags(t, "bkt", "")
	for k := range etags {
		if k == ".sourceignore" || strings.HasPrefix(k, "drafts/") || k == "apps/README.md" {
			delete(etags, k)
		}
	}
	got := waitReady(t, obj, fluxRevision(etags))
	want := []string{"apps/app.yaml", "apps/keep.md", "sub/.sourceignore", "sub/config.yaml"}
	if files := artifactFiles(t, got.Status.Artifact); !reflect.DeepEqual(names(files), want) {
		t.Errorf("artifact holds %v, want %v", names(files), want)
	}
	if got.Status.ObservedIgnore == nil || *got.Status.ObservedIgnore != ignore {
		t.Errorf("status.observedIgnore %v", got.Status.ObservedIgnore)
	}

	// An ignored object that changes does not change the revision.
	s3.PutObjects(t, "bkt", map[string]string{"drafts/next.yaml": "draft 2"})
	if again := reconcileNow(t, obj); again.Status.Artifact.Revision != got.Status.Artifact.Revision {
		t.Errorf("an ignored object changed the revision: %s", describe(again))
	}
}
