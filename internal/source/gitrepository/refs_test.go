package gitrepository_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

func TestEachRefKindResolvesToItsCommit(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	repo := git.Repo(t, "refs")
	first := repo.Commit("main", map[string]string{"app/deploy.yaml": "v: 1\n"}, "first")
	repo.Tag("v1.0.0", first, "")
	second := repo.Commit("main", map[string]string{"app/deploy.yaml": "v: 2\n"}, "second")
	repo.Tag("v1.2.0", second, "release 1.2.0")
	repo.Tag("v2.0.0-rc.1", second, "")
	feature := repo.Commit("feature", map[string]string{"app/feature.yaml": "f: 1\n"}, "feature work")

	cases := []struct {
		name     string
		ref      sourcev1.GitRepositoryRef
		revision string
		file     string
		content  string
	}{
		{"branch", sourcev1.GitRepositoryRef{Branch: "main"}, "main@sha1:" + second.String(), "app/deploy.yaml", "v: 2\n"},
		{"other-branch", sourcev1.GitRepositoryRef{Branch: "feature"}, "feature@sha1:" + feature.String(), "app/feature.yaml", "f: 1\n"},
		{"lightweight-tag", sourcev1.GitRepositoryRef{Tag: "v1.0.0"}, "v1.0.0@sha1:" + first.String(), "app/deploy.yaml", "v: 1\n"},
		{"annotated-tag", sourcev1.GitRepositoryRef{Tag: "v1.2.0"}, "v1.2.0@sha1:" + second.String(), "app/deploy.yaml", "v: 2\n"},
		{"semver", sourcev1.GitRepositoryRef{SemVer: ">=1.0.0 <2.0.0"}, "v1.2.0@sha1:" + second.String(), "app/deploy.yaml", "v: 2\n"},
		{"name", sourcev1.GitRepositoryRef{Name: "refs/heads/feature"}, "refs/heads/feature@sha1:" + feature.String(), "app/feature.yaml", "f: 1\n"},
		{"commit", sourcev1.GitRepositoryRef{Commit: first.String()}, "sha1:" + first.String(), "app/deploy.yaml", "v: 1\n"},
		{"commit-on-branch", sourcev1.GitRepositoryRef{Branch: "main", Commit: first.String()}, "main@sha1:" + first.String(), "app/deploy.yaml", "v: 1\n"},
	}
	createBasicAuthSecret(t, ns, "git-auth")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := newGitRepository(t, ns, tc.name, git.HTTPURL("refs"), func(g *sourcev1.GitRepository) {
				g.Spec.Reference = &tc.ref
				g.Spec.SecretRef = &meta.LocalObjectReference{Name: "git-auth"}
			})
			got := waitReady(t, obj, tc.revision)
			files := artifactFiles(t, got.Status.Artifact)
			if files[tc.file] != tc.content {
				t.Errorf("artifact has %s = %q, want %q (files: %v)", tc.file, files[tc.file], tc.content, names(files))
			}
		})
	}
}

func TestMissingSecretRecoversOnceCreated(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	h := git.Repo(t, "app").Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	obj := newGitRepository(t, ns, "app", git.HTTPURL("app"), withSecret("git-auth"))
	got := waitNotReady(t, obj, 30*time.Second)
	if r := conditions.GetReason(got, meta.ReadyCondition); r != sourcev1.AuthenticationFailedReason {
		t.Errorf("Ready reason %s, want %s", r, sourcev1.AuthenticationFailedReason)
	}
	// Retries back off but continue: the object heals without a nudge.
	createBasicAuthSecret(t, ns, "git-auth")
	waitReady(t, obj, "main@sha1:"+h.String())
}

func TestStatusHasFluxShape(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	repo := git.Repo(t, "shape")
	h := repo.Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "Add a\n\nwith a body")
	createBasicAuthSecret(t, ns, "git-auth")
	obj := newGitRepository(t, ns, "shape", git.HTTPURL("shape"), withSecret("git-auth"))
	got := waitReady(t, obj, "main@sha1:"+h.String())

	a := got.Status.Artifact
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(a.Digest) {
		t.Errorf("artifact digest %q is not sha256:<hex>", a.Digest)
	}
	if !strings.HasPrefix(a.URL, env.Manager.StorageURL+"/") {
		t.Errorf("artifact URL %q is not served by the artifact server %s", a.URL, env.Manager.StorageURL)
	}
	if a.LastUpdateTime.IsZero() || a.Size == nil || a.Path == "" {
		t.Errorf("artifact misses lastUpdateTime, size or path: %+v", a)
	}
	for _, c := range []struct{ typ, reason string }{
		{meta.ReadyCondition, meta.SucceededReason},
		{sourcev1.ArtifactInStorageCondition, meta.SucceededReason},
	} {
		cond := conditions.Get(got, c.typ)
		if cond == nil || cond.Status != "True" || cond.Reason != c.reason || cond.ObservedGeneration != got.Generation {
			t.Errorf("condition %s = %+v, want True/%s at generation %d", c.typ, cond, c.reason, got.Generation)
		}
	}
	want := "stored artifact for revision 'main@sha1:" + h.String() + "'"
	if msg := conditions.GetMessage(got, meta.ReadyCondition); msg != want {
		t.Errorf("Ready message = %q, want %q", msg, want)
	}
	for _, c := range []string{meta.ReconcilingCondition, meta.StalledCondition, sourcev1.FetchFailedCondition} {
		if conditions.Has(got, c) {
			t.Errorf("a ready object still has condition %s", c)
		}
	}
	if !controllerutil.ContainsFinalizer(got, sourcev1.SourceFinalizer) {
		t.Errorf("finalizer %s missing: %v", sourcev1.SourceFinalizer, got.Finalizers)
	}
	ev := waitEvent(t, ns, "shape", "NewArtifact")
	if ev.Message != "stored artifact for commit 'Add a'" || ev.Type != "Normal" {
		t.Errorf("event = %s %q, want Normal \"stored artifact for commit 'Add a'\"", ev.Type, ev.Message)
	}
	if ev.Annotations[sourcev1.GroupVersion.Group+"/revision"] != a.Revision {
		t.Errorf("event annotations %v miss the revision", ev.Annotations)
	}
}
