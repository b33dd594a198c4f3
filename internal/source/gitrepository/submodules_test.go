package gitrepository_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
)

// With recurseSubmodules, a submodule given by a URL relative to the
// parent's is fetched with the parent's credentials and lands in the
// artifact at its path, without git's own files; without it, the
// submodule's folder stays empty.
func TestRecurseSubmodules(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	commonRepo := git.Repo(t, "common")
	common := commonRepo.Commit("main", map[string]string{"deploy/cm.yaml": "common: 1\n"}, "common")
	// A later commit on common's branch: the artifact holds the recorded one.
	commonRepo.Commit("main", map[string]string{"deploy/cm.yaml": "common: 2\n"}, "common moved on")
	parent := git.Repo(t, "parent")
	parent.Submodule("libs/common", "../common.git", common)
	h := parent.Commit("main", map[string]string{"apps/app.yaml": "app: 1\n"}, "with a submodule")
	createBasicAuthSecret(t, ns, "git-auth")

	with := newGitRepository(t, ns, "with-submodules", git.HTTPURL("parent"), func(g *sourcev1.GitRepository) {
		withSecret("git-auth")(g)
		g.Spec.RecurseSubmodules = true
	})
	got := waitReady(t, with, "main@sha1:"+h.String())
	files := artifactFiles(t, got.Status.Artifact)
	if files["libs/common/deploy/cm.yaml"] != "common: 1\n" || files["apps/app.yaml"] != "app: 1\n" {
		t.Errorf("artifact files = %v, want the parent's and the submodule's at its recorded commit", files)
	}
	for name := range files {
		if strings.HasSuffix(name, ".git") || strings.Contains(name, ".git/") || name == ".gitmodules" {
			t.Errorf("artifact holds git's own file %s", name)
		}
	}
	if !got.Status.ObservedRecurseSubmodules {
		t.Error("status.observedRecurseSubmodules is not set")
	}

	// Through proxySecretRef, the submodule is fetched through the proxy too.
	proxy, seen := newRecordingProxy(t)
	createSecret(t, ns, "proxy", map[string][]byte{"address": []byte(proxy)})
	proxied := newGitRepository(t, ns, "proxied-submodules", git.HTTPURL("parent"), func(g *sourcev1.GitRepository) {
		withSecret("git-auth")(g)
		g.Spec.RecurseSubmodules = true
		g.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: "proxy"}
	})
	got = waitReady(t, proxied, "main@sha1:"+h.String())
	if files := artifactFiles(t, got.Status.Artifact); files["libs/common/deploy/cm.yaml"] != "common: 1\n" {
		t.Errorf("through the proxy, the artifact holds %v", names(files))
	}
	if all := strings.Join(seen(), ","); !strings.Contains(all, "/common.git/git-upload-pack") {
		t.Errorf("the proxy saw %s, want the submodule's fetch", all)
	}

	without := newGitRepository(t, ns, "without-submodules", git.HTTPURL("parent"), withSecret("git-auth"))
	got = waitReady(t, without, "main@sha1:"+h.String())
	if files := artifactFiles(t, got.Status.Artifact); len(files) != 1 {
		t.Errorf("without recurseSubmodules the artifact holds %v, want apps/app.yaml only", names(files))
	}
}

// The parent's credentials are not sent to a submodule on another server:
// its fetch fails there for want of them, and the message says which URL.
func TestSubmoduleOnAnotherServerGetsNoCredentials(t *testing.T) {
	ns := env.Namespace(t)
	git, other := newGitServer(t), newGitServer(t)
	lib := other.Repo(t, "lib").Commit("main", map[string]string{"lib.yaml": "lib: 1\n"}, "lib")
	parent := git.Repo(t, "parent")
	parent.Submodule("lib", other.HTTPURL("lib"), lib)
	parent.Commit("main", map[string]string{"app.yaml": "app: 1\n"}, "with a foreign submodule")
	createBasicAuthSecret(t, ns, "git-auth")

	obj := newGitRepository(t, ns, "foreign", git.HTTPURL("parent"), func(g *sourcev1.GitRepository) {
		withSecret("git-auth")(g)
		g.Spec.RecurseSubmodules = true
	})
	got := waitNotReady(t, obj, 30*time.Second)
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	if r := conditions.GetReason(got, meta.ReadyCondition); r != sourcev1.GitOperationFailedReason ||
		!strings.Contains(msg, "submodule 'lib'") || !strings.Contains(msg, other.HTTPURL("lib")) || !strings.Contains(msg, "authentication") {
		t.Errorf("Ready = %s: %q, want GitOperationFailed naming the submodule, its URL and the missing authentication", r, msg)
	}
	if got.Status.Artifact != nil {
		t.Errorf("an artifact without its submodule was stored: %s", got.Status.Artifact.Revision)
	}
}
