package artifact_test

import (
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/artifact"
)

func TestStoredPassesEveryArtifactStoredAgain(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	later := metav1.NewTime(at.Add(time.Minute))
	a := &meta.Artifact{Revision: "main@sha1:aa", Digest: "sha256:11", LastUpdateTime: at}
	with := func(f func(*meta.Artifact)) *meta.Artifact {
		c := a.DeepCopy()
		f(c)
		return c
	}
	cases := []struct {
		name     string
		old, new *meta.Artifact
		want     bool
	}{
		{"no artifact yet", nil, nil, false},
		{"first artifact", nil, a, true},
		{"unchanged", a, a.DeepCopy(), false},
		{"new revision", a, with(func(c *meta.Artifact) { c.Revision = "main@sha1:bb" }), true},
		{"new content", a, with(func(c *meta.Artifact) { c.Digest = "sha256:22" }), true},
		// After a restart with an empty artifact folder, the source stores
		// the same revision and content again: its consumers found it
		// missing and wait for it.
		{"same artifact stored again", a, with(func(c *meta.Artifact) { c.LastUpdateTime = later }), true},
		{"artifact removed", a, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := artifact.Stored(tc.old, tc.new); got != tc.want {
				t.Errorf("Stored = %v, want %v", got, tc.want)
			}
		})
	}
}
