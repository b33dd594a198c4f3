package gitrepository_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBadRefsGiveAClearMessage(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	repo := git.Repo(t, "app")
	h := repo.Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	repo.Tag("v1.0.0", h, "")
	createBasicAuthSecret(t, ns, "git-auth")
	cases := []struct {
		name    string
		ref     sourcev1.GitRepositoryRef
		message string
	}{
		{"unknown-branch", sourcev1.GitRepositoryRef{Branch: "nope"}, "unable to resolve branch 'nope'"},
		{"unknown-tag", sourcev1.GitRepositoryRef{Tag: "v9.9.9"}, "unable to resolve tag 'v9.9.9'"},
		{"no-semver-match", sourcev1.GitRepositoryRef{SemVer: ">=2.0.0"}, "no tag matches semver constraint '>=2.0.0'"},
		{"unknown-commit", sourcev1.GitRepositoryRef{Commit: strings.Repeat("ab", 20)}, "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := newGitRepository(t, ns, tc.name, git.HTTPURL("app"), func(g *sourcev1.GitRepository) {
				withSecret("git-auth")(g)
				g.Spec.Reference = &tc.ref
			})
			got := waitNotReady(t, obj, 30*time.Second)
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready.Reason != sourcev1.GitOperationFailedReason || !strings.Contains(ready.Message, tc.message) {
				t.Errorf("Ready = %s: %q, want %s with %q", ready.Reason, ready.Message, sourcev1.GitOperationFailedReason, tc.message)
			}
		})
	}
}

func TestUnreachableHostHonoursTheTimeout(t *testing.T) {
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
	obj := newGitRepository(t, ns, "silent", "http://"+l.Addr().String()+"/repo.git", func(g *sourcev1.GitRepository) {
		g.Spec.Timeout = &metav1.Duration{Duration: 2 * time.Second}
	})
	start := time.Now()
	got := waitNotReady(t, obj, 30*time.Second)
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	if !strings.Contains(msg, "timed out") {
		t.Errorf("Ready message %q does not say the fetch timed out", msg)
	}
	t.Logf("failed after %s with timeout 2s", time.Since(start))

	refused := newGitRepository(t, ns, "refused", "http://127.0.0.1:1/repo.git", nil)
	got = waitNotReady(t, refused, 30*time.Second)
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("Ready message %q does not name the unreachable host", msg)
	}
}

func TestInvalidURLStalls(t *testing.T) {
	ns := env.Namespace(t)
	obj := newGitRepository(t, ns, "no-host", "https:///no-host.git", nil)
	got := waitNotReady(t, obj, 30*time.Second)
	if !conditions.IsStalled(got) || conditions.GetReason(got, meta.ReadyCondition) != sourcev1.URLInvalidReason {
		t.Errorf("a URL without a host should stall with URLInvalid: %s", describe(got))
	}
}
