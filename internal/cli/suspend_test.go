package cli

import (
	"strings"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func readRepo(t *testing.T, c client.Client, name string) *sourcev1.GitRepository {
	t.Helper()
	r := &sourcev1.GitRepository{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "flux-system", Name: name}, r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSuspendSourceGit(t *testing.T) {
	c := fakeCluster(t, gitRepo("podinfo", stored), gitRepo("other"))

	out, _, err := weir(t, "suspend", "source", "git", "podinfo")
	if err != nil {
		t.Fatal(err)
	}

	want := "► suspending source git podinfo in flux-system namespace\n" +
		"✔ source git suspended\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if !readRepo(t, c, "podinfo").Spec.Suspend {
		t.Error("podinfo is not suspended")
	}
	if readRepo(t, c, "other").Spec.Suspend {
		t.Error("other was suspended too")
	}
}

func TestSuspendAll(t *testing.T) {
	c := fakeCluster(t, gitRepo("a"), gitRepo("b"))

	out, _, err := weir(t, "suspend", "source", "git", "--all")
	if err != nil {
		t.Fatal(err)
	}

	if got := strings.Count(out, "✔ source git suspended"); got != 2 {
		t.Errorf("%d suspended, want 2:\n%s", got, out)
	}
	for _, name := range []string{"a", "b"} {
		if !readRepo(t, c, name).Spec.Suspend {
			t.Errorf("%s is not suspended", name)
		}
	}
}

func TestResumeWaitsForTheReconcile(t *testing.T) {
	c := fakeCluster(t, gitRepo("podinfo", suspendedRepo))
	fakeController(t, c, stored)

	out, _, err := weir(t, "resume", "source", "git", "podinfo")
	if err != nil {
		t.Fatal(err)
	}

	want := "► resuming source git podinfo in flux-system namespace\n" +
		"✔ source git resumed\n" +
		"◎ waiting for GitRepository reconciliation\n" +
		"✔ GitRepository podinfo reconciliation completed\n" +
		"✔ fetched revision " + testRevision + "\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if readRepo(t, c, "podinfo").Spec.Suspend {
		t.Error("podinfo is still suspended")
	}
}

func TestResumeReportsAFailedReconcile(t *testing.T) {
	c := fakeCluster(t, gitRepo("podinfo", suspendedRepo))
	fakeController(t, c, failing("authentication required"))

	_, _, err := weir(t, "resume", "source", "git", "podinfo")

	if err == nil || !strings.HasSuffix(err.Error(), "failed to reconcile: authentication required") {
		t.Errorf("err = %v", err)
	}
}

func TestResumeAllDoesNotWaitUnlessAsked(t *testing.T) {
	c := fakeCluster(t, gitRepo("a", suspendedRepo), gitRepo("b", suspendedRepo))

	out, _, err := weir(t, "resume", "source", "git", "--all")
	if err != nil {
		t.Fatal(err)
	}

	if strings.Count(out, "✔ source git resumed") != 2 || strings.Contains(out, "waiting") {
		t.Errorf("want two resumed and no wait, got\n%s", out)
	}
	for _, name := range []string{"a", "b"} {
		if readRepo(t, c, name).Spec.Suspend {
			t.Errorf("%s is still suspended", name)
		}
	}
}

func TestSuspendArguments(t *testing.T) {
	fakeCluster(t, gitRepo("podinfo"))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"suspend", "source", "git"}, "source git name is required"},
		{[]string{"suspend", "source", "git", "podinfo", "--all"}, "give names or --all, not both"},
		{[]string{"resume", "source", "git", "missing"}, "GitRepository flux-system/missing not found"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if _, _, err := weir(t, tt.args...); err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestUnknownSubcommandFails(t *testing.T) {
	for _, args := range [][]string{
		{"reconcile", "kustomizaton", "x"},
		{"suspend", "source", "gti", "x"},
		{"reconcile", "alert", "on-call"}, // nothing reconciles an Alert
	} {
		_, _, err := weir(t, args...)
		if err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("weir %s: err = %v, want an unknown command error", strings.Join(args, " "), err)
		}
	}
	_, _, err := weir(t, "reconcile", "kustomizaton", "x")
	if err == nil || !strings.Contains(err.Error(), "did you mean kustomization?") {
		t.Errorf("weir reconcile kustomizaton: err = %v, want a suggestion", err)
	}
	if _, _, err := weir(t, "reconcile"); err != nil {
		t.Errorf("weir reconcile with no argument: %v, want its help", err)
	}
}

func TestSuspendBySelector(t *testing.T) {
	c := fakeCluster(t,
		gitRepo("payments", labelled("team", "payments")),
		gitRepo("billing", labelled("team", "payments")),
		gitRepo("search", labelled("team", "search")),
	)

	out, _, err := weir(t, "suspend", "source", "git", "-l", "team=payments")
	if err != nil {
		t.Fatal(err)
	}

	want := "► suspending source git billing in flux-system namespace\n" +
		"✔ source git suspended\n" +
		"► suspending source git payments in flux-system namespace\n" +
		"✔ source git suspended\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	for name, want := range map[string]bool{"payments": true, "billing": true, "search": false} {
		if got := readRepo(t, c, name).Spec.Suspend; got != want {
			t.Errorf("%s: suspended = %v, want %v", name, got, want)
		}
	}

	out, _, err = weir(t, "resume", "source", "git", "--selector", "team=payments", "--all")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "✔ source git resumed") != 2 || readRepo(t, c, "payments").Spec.Suspend || readRepo(t, c, "billing").Spec.Suspend {
		t.Errorf("resume -l team=payments --all printed\n%s", out)
	}

	_, errOut, err := weir(t, "suspend", "source", "git", "-l", "team=nobody")
	if err != nil || errOut != "no GitRepository objects matching team=nobody found in flux-system namespace\n" {
		t.Errorf("no match: err = %v, stderr %q", err, errOut)
	}
	if _, _, err := weir(t, "suspend", "source", "git", "search", "-l", "team=search"); err == nil || err.Error() != "give names or --selector, not both" {
		t.Errorf("names with -l: err = %v", err)
	}
	if _, _, err := weir(t, "suspend", "source", "git", "-l", "team in ("); err == nil || !strings.Contains(err.Error(), "--selector") {
		t.Errorf("a broken selector: err = %v", err)
	}
}
