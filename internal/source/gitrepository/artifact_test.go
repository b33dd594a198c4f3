package gitrepository_test

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func TestIgnoreRulesShapeTheArtifact(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	h := git.Repo(t, "app").Commit("main", map[string]string{
		"apps/deploy.yaml":      "kind: Deployment\n",
		"apps/notes.md":         "notes\n",
		"docs/readme.txt":       "docs\n",
		"secrets/.sourceignore": "*.key\n",
		"secrets/tls.key":       "key\n",
		"secrets/keep.yaml":     "keep: true\n",
	}, "first")
	createBasicAuthSecret(t, ns, "git-auth")
	ignore := "/docs/\n*.md\n"
	obj := newGitRepository(t, ns, "app", git.HTTPURL("app"), func(g *sourcev1.GitRepository) {
		withSecret("git-auth")(g)
		g.Spec.Ignore = &ignore
	})
	got := waitReady(t, obj, "main@sha1:"+h.String())
	files := artifactFiles(t, got.Status.Artifact)
	for _, want := range []string{"apps/deploy.yaml", "secrets/keep.yaml"} {
		if _, ok := files[want]; !ok {
			t.Errorf("artifact lacks %s: %v", want, names(files))
		}
	}
	for _, gone := range []string{"apps/notes.md", "docs/readme.txt", "secrets/tls.key"} {
		if _, ok := files[gone]; ok {
			t.Errorf("artifact holds ignored %s", gone)
		}
	}
	for name := range files {
		if strings.HasPrefix(name, ".git/") {
			t.Errorf("artifact holds Git metadata %s", name)
		}
	}
	if got.Status.ObservedIgnore == nil || *got.Status.ObservedIgnore != ignore {
		t.Errorf("observedIgnore = %v, want %q", got.Status.ObservedIgnore, ignore)
	}
}

func TestIncludeCopiesAnotherSourcesTree(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	createBasicAuthSecret(t, ns, "git-auth")
	lib := git.Repo(t, "lib").Commit("main", map[string]string{"base/cm.yaml": "kind: ConfigMap\n", "other/x.yaml": "x\n"}, "lib")
	app := git.Repo(t, "app").Commit("main", map[string]string{"app.yaml": "kind: App\n"}, "app")
	libObj := newGitRepository(t, ns, "lib", git.HTTPURL("lib"), withSecret("git-auth"))
	waitReady(t, libObj, "main@sha1:"+lib.String())
	obj := newGitRepository(t, ns, "app", git.HTTPURL("app"), func(g *sourcev1.GitRepository) {
		withSecret("git-auth")(g)
		g.Spec.Include = []sourcev1.GitRepositoryInclude{{
			GitRepositoryRef: meta.LocalObjectReference{Name: "lib"},
			FromPath:         "base",
			ToPath:           "vendor/lib",
		}}
	})
	got := waitReady(t, obj, "main@sha1:"+app.String())
	files := artifactFiles(t, got.Status.Artifact)
	if files["vendor/lib/cm.yaml"] != "kind: ConfigMap\n" || files["app.yaml"] != "kind: App\n" {
		t.Errorf("included tree not copied: %v", names(files))
	}
	if _, ok := files["vendor/lib/x.yaml"]; ok {
		t.Error("include copied files outside fromPath")
	}
	if len(got.Status.IncludedArtifacts) != 1 || !strings.HasPrefix(got.Status.IncludedArtifacts[0].Revision, "main@sha1:"+lib.String()) {
		t.Errorf("includedArtifacts = %+v", got.Status.IncludedArtifacts)
	}
}

func TestRepositoryOverTheSizeCapIsRefused(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	big := make([]byte, testenv.ArtifactMaxSize+(1<<20))
	_, _ = rand.Read(big) // incompressible
	git.Repo(t, "big").Commit("main", map[string]string{"blob.bin": string(big)}, "big")
	createBasicAuthSecret(t, ns, "git-auth")
	obj := newGitRepository(t, ns, "big", git.HTTPURL("big"), withSecret("git-auth"))
	got := waitNotReady(t, obj, 60*time.Second)
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	if !strings.Contains(msg, "limit") {
		t.Errorf("Ready message %q does not name the size limit", msg)
	}
	if got.Status.Artifact != nil {
		t.Errorf("an oversized artifact was stored: %+v", got.Status.Artifact)
	}
}

func TestSymlinksEscapingTheTreeAreDropped(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	repo := git.Repo(t, "links")
	repo.Link("passwd", "/etc/passwd")
	repo.Link("up", "../../..")
	repo.Link("inside", "real.yaml")
	h := repo.Commit("main", map[string]string{"real.yaml": "real: true\n"}, "links")
	createBasicAuthSecret(t, ns, "git-auth")
	obj := newGitRepository(t, ns, "links", git.HTTPURL("links"), withSecret("git-auth"))
	got := waitReady(t, obj, "main@sha1:"+h.String())
	files := artifactFiles(t, got.Status.Artifact)
	if _, ok := files["passwd"]; ok {
		t.Error("a symlink to /etc/passwd reached the artifact")
	}
	if _, ok := files["up"]; ok {
		t.Error("a symlink escaping the tree reached the artifact")
	}
	if files["real.yaml"] != "real: true\n" {
		t.Errorf("regular files missing: %v", names(files))
	}
	if files["inside"] != "-> real.yaml" {
		t.Errorf("a symlink inside the tree was not kept: %q", files["inside"])
	}
}
