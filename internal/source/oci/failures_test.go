package oci_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

func TestATagThatDoesNotExistKeepsThePreviousArtifact(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	digest := reg.PushFiles(t, "app", "v1.0.0", map[string]string{"a.yaml": "a: 1\n"}, nil)
	obj := newOCIRepository(t, ns, "app", reg.URL("app"), withTag("v1.0.0"))
	before := waitReady(t, obj, "v1.0.0@"+digest).Status.Artifact

	// The spec moves to a tag nobody pushed.
	setTag(t, obj, "v9.9.9")
	got := waitNotReady(t, obj)
	ready := conditions.Get(got, meta.ReadyCondition)
	want := "failed to determine artifact digest: tag 'v9.9.9' not found in '" + reg.URL("app") + "'"
	if ready.Reason != sourcev1.OCIPullFailedReason || ready.Message != want {
		t.Errorf("Ready = %s: %q, want %s: %q", ready.Reason, ready.Message, sourcev1.OCIPullFailedReason, want)
	}
	if !conditions.IsTrue(got, sourcev1.FetchFailedCondition) || !conditions.IsReconciling(got) {
		t.Errorf("FetchFailed and Reconciling (retrying) should be True: %s", describe(got))
	}
	assertKept(t, got, before)
}

func TestARegistryThatIsDownIsNamedAndThePreviousArtifactKept(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	digest := reg.PushFiles(t, "app", "latest", map[string]string{"a.yaml": "a: 1\n"}, nil)
	obj := newOCIRepository(t, ns, "app", reg.URL("app"), nil)
	before := waitReady(t, obj, "latest@"+digest).Status.Artifact

	reg.Stop()
	got := reconcileNow(t, obj)
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	if !conditions.IsFalse(got, meta.ReadyCondition) || !strings.Contains(msg, "registry "+reg.Host+" is unreachable") {
		t.Errorf("Ready message %q does not say that registry %s is unreachable: %s", msg, reg.Host, describe(got))
	}
	assertKept(t, got, before)

	never := newOCIRepository(t, ns, "never", "oci://127.0.0.1:1/app", nil)
	got = waitNotReady(t, never)
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "registry 127.0.0.1:1 is unreachable") {
		t.Errorf("Ready message %q does not name the unreachable registry", msg)
	}
}

func TestASilentRegistryHonoursTheTimeout(t *testing.T) {
	ns := env.Namespace(t)
	// A server that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	obj := newOCIRepository(t, ns, "silent", "oci://"+l.Addr().String()+"/app", func(o *sourcev1.OCIRepository) {
		o.Spec.Timeout = &metav1.Duration{Duration: 2 * time.Second}
	})
	start := time.Now()
	got := waitNotReady(t, obj)
	want := "timed out talking to registry " + l.Addr().String()
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, want) {
		t.Errorf("Ready message %q does not say %q", msg, want)
	}
	t.Logf("failed after %s with timeout 2s", time.Since(start))
}

func TestInvalidSpecsStall(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	cases := []struct {
		name, url string
		ref       *sourcev1.OCIRepositoryRef
		reason    string
		message   string
	}{
		{"tag-in-url", reg.URL("app") + ":v1", nil, sourcev1.URLInvalidReason, "URL must not contain a tag; remove ':v1'"},
		{"bad-digest", reg.URL("app"), &sourcev1.OCIRepositoryRef{Digest: "sha256:nope"}, sourcev1.ReadOperationFailedReason, "digest 'sha256:nope' is not a valid"},
		{"bad-semver", reg.URL("app"), &sourcev1.OCIRepositoryRef{SemVer: "not a range"}, sourcev1.ReadOperationFailedReason, "semver 'not a range' parse error"},
		{"bad-filter", reg.URL("app"), &sourcev1.OCIRepositoryRef{SemVer: ">=1.0.0", SemverFilter: "(("}, sourcev1.ReadOperationFailedReason, "semverFilter '((' is not a regular expression"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := newOCIRepository(t, ns, tc.name, tc.url, func(o *sourcev1.OCIRepository) { o.Spec.Reference = tc.ref })
			got := waitNotReady(t, obj)
			ready := conditions.Get(got, meta.ReadyCondition)
			if !conditions.IsStalled(got) || ready.Reason != tc.reason || !strings.Contains(ready.Message, tc.message) {
				t.Errorf("want Stalled with %s %q: %s", tc.reason, tc.message, describe(got))
			}
		})
	}
}

func TestNoMatchingTagIsReported(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	reg.PushFiles(t, "app", "v1.0.0", map[string]string{"a.yaml": "a: 1\n"}, nil)
	obj := newOCIRepository(t, ns, "app", reg.URL("app"), func(o *sourcev1.OCIRepository) {
		o.Spec.Reference = &sourcev1.OCIRepositoryRef{SemVer: ">=2.0.0"}
	})
	got := waitNotReady(t, obj)
	ready := conditions.Get(got, meta.ReadyCondition)
	want := "failed to determine the artifact tag for '" + reg.URL("app") + "': no match found for semver: >=2.0.0"
	if ready.Reason != sourcev1.ReadOperationFailedReason || ready.Message != want {
		t.Errorf("Ready = %s: %q, want %s: %q", ready.Reason, ready.Message, sourcev1.ReadOperationFailedReason, want)
	}
}

// assertKept checks that a failed reconcile left the previous artifact in
// status and in storage, still served.
func assertKept(t *testing.T, got *sourcev1.OCIRepository, before *meta.Artifact) {
	t.Helper()
	if got.Status.Artifact == nil || got.Status.Artifact.Digest != before.Digest || got.Status.Artifact.Revision != before.Revision {
		t.Fatalf("the previous artifact was dropped: %+v, was %+v", got.Status.Artifact, before)
	}
	if !env.Manager.Store.Has(got.Status.Artifact) {
		t.Error("the previous artifact is no longer in storage")
	}
	if !conditions.IsTrue(got, sourcev1.ArtifactInStorageCondition) {
		t.Errorf("ArtifactInStorage is not True: %s", describe(got))
	}
	testenv.Download(t, got.Status.Artifact)
}

func setTag(t *testing.T, obj *sourcev1.OCIRepository, tag string) {
	t.Helper()
	got := waitFor(t, 0, "the object", obj, func(*sourcev1.OCIRepository) bool { return true })
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Reference = &sourcev1.OCIRepositoryRef{Tag: tag}
	if err := env.Client.Patch(t.Context(), got, patch); err != nil {
		t.Fatal(err)
	}
}
