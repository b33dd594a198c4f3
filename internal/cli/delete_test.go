package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// weirWithInput runs the command line with in as its standard input.
func weirWithInput(t *testing.T, in string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(in))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

func repoExists(t *testing.T, c client.Client, name string) bool {
	t.Helper()
	err := c.Get(t.Context(), client.ObjectKey{Namespace: "flux-system", Name: name}, &sourcev1.GitRepository{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestDeleteAsksFirst(t *testing.T) {
	c := fakeCluster(t, gitRepo("podinfo"), gitRepo("other"))

	out, errOut, err := weirWithInput(t, "y\n", "delete", "source", "git", "podinfo")
	if err != nil {
		t.Fatal(err)
	}

	if errOut != "Are you sure you want to delete source git podinfo? [y/N] " {
		t.Errorf("asked %q", errOut)
	}
	want := "► deleting source git podinfo in flux-system namespace\n" +
		"✔ source git deleted\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if repoExists(t, c, "podinfo") {
		t.Error("podinfo is still there")
	}
	if !repoExists(t, c, "other") {
		t.Error("other was deleted too")
	}
}

func TestDeleteRefusedKeepsTheObject(t *testing.T) {
	for _, answer := range []string{"n\n", "\n", "", "maybe\n"} {
		t.Run(strings.TrimSpace(answer), func(t *testing.T) {
			c := fakeCluster(t, gitRepo("podinfo"))

			out, _, err := weirWithInput(t, answer, "delete", "source", "git", "podinfo")

			want := "source git podinfo was not deleted: not confirmed (answer y, or pass --silent)"
			if err == nil || err.Error() != want {
				t.Errorf("err = %v, want %q", err, want)
			}
			if out != "" || !repoExists(t, c, "podinfo") {
				t.Errorf("podinfo was deleted on %q; printed %q", answer, out)
			}
		})
	}
}

func TestDeleteSilentDoesNotAsk(t *testing.T) {
	for _, flag := range []string{"--silent", "-s"} {
		c := fakeCluster(t, gitRepo("podinfo"))

		_, errOut, err := weirWithInput(t, "", "delete", "source", "git", "podinfo", flag)

		if err != nil || errOut != "" || repoExists(t, c, "podinfo") {
			t.Errorf("%s: err = %v, stderr %q, podinfo still there: %v", flag, err, errOut, repoExists(t, c, "podinfo"))
		}
	}
}

func TestDeleteMissingObject(t *testing.T) {
	fakeCluster(t)

	_, errOut, err := weirWithInput(t, "y\n", "delete", "kustomization", "apps")

	if err == nil || err.Error() != "Kustomization flux-system/apps not found" {
		t.Errorf("err = %v", err)
	}
	if errOut != "" {
		t.Errorf("asked about a missing object: %q", errOut)
	}
}

func TestDeleteServesEveryKind(t *testing.T) {
	fakeCluster(t)
	for _, args := range [][]string{
		{"source", "git"}, {"source", "oci"}, {"source", "helm"}, {"source", "chart"},
		{"kustomization"}, {"ks"}, {"helmrelease"}, {"hr"}, {"receiver"},
		{"alert"}, {"alert-provider"}, {"instance"},
	} {
		_, _, err := weir(t, append(append([]string{"delete"}, args...), "x", "--silent")...)
		if err == nil || !strings.HasSuffix(err.Error(), " flux-system/x not found") {
			t.Errorf("weir delete %s x: err = %v, want not found", strings.Join(args, " "), err)
		}
	}
}

func TestDeleteQuestionEndsOnInterrupt(t *testing.T) {
	in, w := io.Pipe() // a terminal where nobody types
	defer w.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan bool)
	go func() { done <- confirm(ctx, in, io.Discard, "Are you sure? [y/N] ") }()

	cancel()

	select {
	case ok := <-done:
		if ok {
			t.Error("an interrupted question confirmed the deletion")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the question still waits for an answer after the interrupt")
	}
}
