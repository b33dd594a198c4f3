package gitrepository_test

import (
	"context"
	"os"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestUnchangedRemoteFetchesNothingAndNewCommitIsPickedUp(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	repo := git.Repo(t, "app")
	first := repo.Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	createBasicAuthSecret(t, ns, "git-auth")
	obj := newGitRepository(t, ns, "app", git.HTTPURL("app"), withSecret("git-auth"))
	ready := waitReady(t, obj, "main@sha1:"+first.String())
	artifactBefore := *ready.Status.Artifact
	fetchesBefore := git.Fetches()

	// A reconcile with nothing new upstream: no clone, same artifact.
	at := requestReconcile(t, obj)
	got := waitFor(t, 30*time.Second, "the request to be handled", obj, func(g *sourcev1.GitRepository) bool {
		return g.Status.LastHandledReconcileAt == at
	})
	if n := git.Fetches() - fetchesBefore; n != 0 {
		t.Errorf("an unchanged remote was fetched %d time(s)", n)
	}
	if got.Status.Artifact.Digest != artifactBefore.Digest || !got.Status.Artifact.LastUpdateTime.Equal(&artifactBefore.LastUpdateTime) {
		t.Errorf("an unchanged remote made a new artifact: %+v, was %+v", got.Status.Artifact, artifactBefore)
	}

	// A new commit: a new revision and a new artifact with the new content.
	second := repo.Commit("main", map[string]string{"a.yaml": "a: 2\n"}, "second")
	start := time.Now()
	requestReconcile(t, obj)
	got = waitReady(t, obj, "main@sha1:"+second.String())
	t.Logf("requestedAt to new revision: %s", time.Since(start))
	if files := artifactFiles(t, got.Status.Artifact); files["a.yaml"] != "a: 2\n" {
		t.Errorf("new artifact has a.yaml = %q", files["a.yaml"])
	}
	if git.Fetches() == fetchesBefore {
		t.Error("a new commit was not fetched")
	}
}

func TestSuspendedObjectIsLeftAlone(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	repo := git.Repo(t, "app")
	first := repo.Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	createBasicAuthSecret(t, ns, "git-auth")
	obj := newGitRepository(t, ns, "app", git.HTTPURL("app"), withSecret("git-auth"))
	waitReady(t, obj, "main@sha1:"+first.String())

	setSuspend(t, obj, true)
	repo.Commit("main", map[string]string{"a.yaml": "a: 2\n"}, "second")
	at := requestReconcile(t, obj)
	time.Sleep(3 * time.Second)
	got := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Artifact.Revision != "main@sha1:"+first.String() || got.Status.LastHandledReconcileAt == at {
		t.Fatalf("a suspended object was reconciled: revision %s, lastHandledReconcileAt %q", got.Status.Artifact.Revision, got.Status.LastHandledReconcileAt)
	}

	setSuspend(t, obj, false)
	waitFor(t, 30*time.Second, "the resumed object to fetch the new commit", obj, func(g *sourcev1.GitRepository) bool {
		return g.Status.Artifact != nil && g.Status.Artifact.Revision != "main@sha1:"+first.String()
	})
}

func setSuspend(t *testing.T, obj *sourcev1.GitRepository, suspend bool) {
	t.Helper()
	got := &sourcev1.GitRepository{}
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
	git := newGitServer(t)
	h := git.Repo(t, "app").Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	createBasicAuthSecret(t, ns, "git-auth")
	obj := newGitRepository(t, ns, "app", git.HTTPURL("app"), withSecret("git-auth"))
	got := waitReady(t, obj, "main@sha1:"+h.String())
	path := env.Manager.Store.Path(got.Status.Artifact)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the artifact is not on disk: %v", err)
	}
	if err := env.Client.Delete(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), &sourcev1.GitRepository{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the GitRepository was not deleted (finalizer not removed?)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the artifact %s is still on disk after delete (stat: %v)", path, err)
	}
}

func TestRequestedAtIsHandledWithoutWaitingForTheInterval(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	h := git.Repo(t, "app").Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	createBasicAuthSecret(t, ns, "git-auth")
	obj := newGitRepository(t, ns, "app", git.HTTPURL("app"), withSecret("git-auth"))
	waitReady(t, obj, "main@sha1:"+h.String())
	start := time.Now()
	at := requestReconcile(t, obj)
	// The interval is an hour: only the annotation can cause this.
	waitFor(t, 10*time.Second, "lastHandledReconcileAt to match", obj, func(g *sourcev1.GitRepository) bool {
		return g.Status.LastHandledReconcileAt == at && g.Status.ObservedGeneration == g.Generation
	})
	t.Logf("requestedAt honoured after %s", time.Since(start))
}
