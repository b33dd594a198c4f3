package gitrepository_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
)

// sparseCheckout keeps only the folders listed in the artifact ("app" does
// not take "apps-extra" along), for a branch and for a commit ref alike;
// the revision is the commit's, as without it.
func TestSparseCheckout(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	h := git.Repo(t, "mono").Commit("main", map[string]string{
		"app/deploy.yaml":      "app: 1\n",
		"app/nested/svc.yaml":  "svc: 1\n",
		"app-extra/other.yaml": "other: 1\n",
		"infra/cluster.yaml":   "infra: 1\n",
		"docs/README.md":       "docs\n",
		"top.yaml":             "top: 1\n",
	}, "monorepo")
	createBasicAuthSecret(t, ns, "git-auth")
	want := []string{"app/deploy.yaml", "app/nested/svc.yaml", "infra/cluster.yaml"}

	for name, ref := range map[string]sourcev1.GitRepositoryRef{
		"branch": {Branch: "main"},
		"commit": {Commit: h.String()},
	} {
		t.Run(name, func(t *testing.T) {
			obj := newGitRepository(t, ns, "sparse-"+name, git.HTTPURL("mono"), func(g *sourcev1.GitRepository) {
				withSecret("git-auth")(g)
				g.Spec.Reference = &ref
				g.Spec.SparseCheckout = []string{"./app", "infra/"}
			})
			revision := "main@sha1:" + h.String()
			if name == "commit" {
				revision = "sha1:" + h.String()
			}
			got := waitReady(t, obj, revision)
			if files := names(artifactFiles(t, got.Status.Artifact)); !reflect.DeepEqual(files, want) {
				t.Errorf("artifact files = %v, want %v", files, want)
			}
			if !reflect.DeepEqual(got.Status.ObservedSparseCheckout, []string{"./app", "infra/"}) {
				t.Errorf("status.observedSparseCheckout = %v", got.Status.ObservedSparseCheckout)
			}
		})
	}

	t.Run("missing-folder", func(t *testing.T) {
		obj := newGitRepository(t, ns, "sparse-missing", git.HTTPURL("mono"), func(g *sourcev1.GitRepository) {
			withSecret("git-auth")(g)
			g.Spec.SparseCheckout = []string{"app", "nope"}
		})
		got := waitNotReady(t, obj, 30*time.Second)
		msg := conditions.GetMessage(got, meta.ReadyCondition)
		if conditions.GetReason(got, meta.ReadyCondition) != sourcev1.GitOperationFailedReason || !strings.Contains(msg, "sparse checkout dir 'nope' does not exist in repository") {
			t.Errorf("Ready = %s, want GitOperationFailed naming the missing folder", describe(got))
		}
	})
}
