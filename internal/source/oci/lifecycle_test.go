package oci_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

func TestUnchangedDigestPullsNothingAndANewPushIsPickedUp(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	first := reg.PushFiles(t, "app", "stable", map[string]string{"a.yaml": "a: 1\n"}, nil)
	obj := newOCIRepository(t, ns, "app", reg.URL("app"), withTag("stable"))
	ready := waitReady(t, obj, "stable@"+first)
	before := *ready.Status.Artifact
	counts := reg.Counts()

	// Nothing new in the registry: one HEAD, no manifest or blob GET.
	got := reconcileNow(t, obj)
	after := reg.Counts()
	if n := after.ManifestHeads - counts.ManifestHeads; n < 1 {
		t.Errorf("the digest was not checked: %d HEAD requests", n)
	}
	if n := after.ManifestGets - counts.ManifestGets; n != 0 {
		t.Errorf("an unchanged digest was pulled: %d manifest GET requests", n)
	}
	if n := after.BlobGets - counts.BlobGets; n != 0 {
		t.Errorf("an unchanged digest was pulled: %d blob GET requests", n)
	}
	if !conditions.IsReady(got) || got.Status.Artifact.Digest != before.Digest || !got.Status.Artifact.LastUpdateTime.Equal(&before.LastUpdateTime) {
		t.Errorf("an unchanged digest made a new artifact: %+v, was %+v", got.Status.Artifact, before)
	}

	// The tag moves: the new manifest is pulled and stored.
	second := reg.PushFiles(t, "app", "stable", map[string]string{"a.yaml": "a: 2\n"}, nil)
	start := time.Now()
	requestReconcile(t, obj)
	got = waitReady(t, obj, "stable@"+second)
	t.Logf("requestedAt to new revision: %s", time.Since(start))
	if files := artifactFiles(t, got.Status.Artifact); files["a.yaml"] != "a: 2\n" {
		t.Errorf("new artifact has a.yaml = %q", files["a.yaml"])
	}
	if reg.Counts().BlobGets == after.BlobGets {
		t.Error("the moved tag was not pulled")
	}
}

func TestSuspendedObjectIsLeftAlone(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	first := reg.PushFiles(t, "app", "latest", map[string]string{"a.yaml": "a: 1\n"}, nil)
	obj := newOCIRepository(t, ns, "app", reg.URL("app"), nil)
	waitReady(t, obj, "latest@"+first)

	setSuspend(t, obj, true)
	reg.PushFiles(t, "app", "latest", map[string]string{"a.yaml": "a: 2\n"}, nil)
	heads := reg.Counts().ManifestHeads
	at := requestReconcile(t, obj)
	time.Sleep(3 * time.Second)
	got := &sourcev1.OCIRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Artifact.Revision != "latest@"+first || got.Status.LastHandledReconcileAt == at || reg.Counts().ManifestHeads != heads {
		t.Fatalf("a suspended object was reconciled: revision %s, lastHandledReconcileAt %q", got.Status.Artifact.Revision, got.Status.LastHandledReconcileAt)
	}

	setSuspend(t, obj, false)
	waitFor(t, 30*time.Second, "the resumed object to pull the new digest", obj, func(o *sourcev1.OCIRepository) bool {
		return o.Status.Artifact != nil && o.Status.Artifact.Revision != "latest@"+first
	})
}

func setSuspend(t *testing.T, obj client.Object, suspend bool) {
	t.Helper()
	got := &sourcev1.OCIRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Suspend = suspend
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatal(err)
	}
}

func TestDeletingTheObjectRemovesItsArtifacts(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	digest := reg.PushFiles(t, "app", "latest", map[string]string{"a.yaml": "a: 1\n"}, nil)
	obj := newOCIRepository(t, ns, "app", reg.URL("app"), nil)
	got := waitReady(t, obj, "latest@"+digest)
	path := env.Manager.Store.Path(got.Status.Artifact)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the artifact is not on disk: %v", err)
	}
	if err := env.Client.Delete(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), &sourcev1.OCIRepository{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the OCIRepository was not deleted (finalizer not removed?)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the artifact %s is still on disk after delete (stat: %v)", path, err)
	}
}
