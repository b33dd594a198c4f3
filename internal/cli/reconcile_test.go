package cli

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
)

func TestReconcileSourceGit(t *testing.T) {
	c := fakeCluster(t, gitRepo("podinfo"))
	fakeController(t, c, stored)

	out, _, err := weir(t, "reconcile", "source", "git", "podinfo")
	if err != nil {
		t.Fatal(err)
	}

	want := "► annotating GitRepository podinfo in flux-system namespace\n" +
		"✔ GitRepository annotated\n" +
		"◎ waiting for GitRepository reconciliation\n" +
		"✔ fetched revision " + testRevision + "\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestReconcileFailsWithTheReadyMessage(t *testing.T) {
	c := fakeCluster(t, gitRepo("podinfo"))
	fakeController(t, c, failing("failed to checkout and determine revision: authentication required"))

	_, _, err := weir(t, "reconcile", "source", "git", "podinfo")

	want := "GitRepository flux-system/podinfo failed to reconcile: failed to checkout and determine revision: authentication required"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestReconcileRefusesSuspendedSource(t *testing.T) {
	c := fakeCluster(t, gitRepo("podinfo", suspendedRepo))

	out, _, err := weir(t, "reconcile", "source", "git", "podinfo")

	if err == nil || !strings.Contains(err.Error(), "resource is suspended") {
		t.Errorf("err = %v, want \"resource is suspended\"", err)
	}
	if strings.Contains(out, "waiting") {
		t.Errorf("waited for a suspended object:\n%s", out)
	}
	if _, ok := readRepo(t, c, "podinfo").Annotations[meta.ReconcileRequestAnnotation]; ok {
		t.Error("a suspended object was annotated")
	}
}

func TestReconcileGivesUpAtTimeout(t *testing.T) {
	fakeCluster(t, gitRepo("podinfo", stored)) // and no controller

	_, _, err := weir(t, "reconcile", "source", "git", "podinfo", "--timeout", "700ms")

	if err == nil || !strings.Contains(err.Error(), "the controller has not handled the request yet") ||
		!strings.Contains(err.Error(), "gave up after --timeout 700ms") {
		t.Errorf("err = %v", err)
	}
}

func TestReconcileNeedsAName(t *testing.T) {
	fakeCluster(t)
	if _, _, err := weir(t, "reconcile", "source", "git"); err == nil || err.Error() != "source git name is required" {
		t.Errorf("err = %v", err)
	}
}
