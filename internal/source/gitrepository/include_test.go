package gitrepository_test

import (
	"context"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// includes sets spec.include to the named GitRepositories.
func includes(names ...string) func(*sourcev1.GitRepository) {
	return func(g *sourcev1.GitRepository) {
		g.Spec.Include = nil
		for _, n := range names {
			g.Spec.Include = append(g.Spec.Include, sourcev1.GitRepositoryInclude{
				GitRepositoryRef: meta.LocalObjectReference{Name: n},
				ToPath:           "vendor/" + n,
			})
		}
	}
}

// waitIncludeCycle waits until obj stalls on the include cycle want.
func waitIncludeCycle(t *testing.T, obj *sourcev1.GitRepository, want string) *sourcev1.GitRepository {
	t.Helper()
	return waitFor(t, 60*time.Second, "Stalled on include cycle "+want, obj, func(g *sourcev1.GitRepository) bool {
		return conditions.IsStalled(g) && conditions.IsFalse(g, meta.ReadyCondition) &&
			conditions.GetMessage(g, meta.ReadyCondition) == "include cycle: "+want &&
			g.Status.ObservedGeneration == g.Generation
	})
}

func TestIncludeCycleWithoutArtifactsStallsWithTheCycle(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	for _, n := range []string{"a", "b", "c", "self"} {
		git.Repo(t, n).Commit("main", map[string]string{n + ".yaml": "n: 1\n"}, "first")
	}
	cases := []struct {
		name     string
		includes map[string][]string
		// want is the cycle each member reports from its own point of view.
		want map[string]string
	}{
		{"self", map[string][]string{"self": {"self"}}, map[string]string{"self": "self -> self"}},
		{"two", map[string][]string{"a": {"b"}, "b": {"a"}}, map[string]string{"a": "a -> b -> a", "b": "b -> a -> b"}},
		{"three", map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}},
			map[string]string{"a": "a -> b -> c -> a", "b": "b -> c -> a -> b", "c": "c -> a -> b -> c"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := ns
			if tc.name != "self" {
				ns = env.Namespace(t)
			}
			objs := map[string]*sourcev1.GitRepository{}
			for name, inc := range tc.includes {
				objs[name] = newGitRepository(t, ns, name, git.HTTPURL(name), includes(inc...))
			}
			for name, want := range tc.want {
				got := waitIncludeCycle(t, objs[name], want)
				if r := conditions.GetReason(got, meta.ReadyCondition); r != "IncludeCycle" {
					t.Errorf("%s: Ready reason %s, want IncludeCycle", name, r)
				}
				if got.Status.Artifact != nil {
					t.Errorf("%s stored an artifact: %s", name, got.Status.Artifact.Revision)
				}
			}
		})
	}
}

func TestIncludeCycleBetweenReadyRepositoriesStopsBuilding(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	for _, n := range []string{"a", "b", "outside"} {
		git.Repo(t, n).Commit("main", map[string]string{n + ".yaml": "n: 1\n"}, "first")
	}
	createBasicAuthSecret(t, ns, "git-auth")
	authed := func(mutate func(*sourcev1.GitRepository)) func(*sourcev1.GitRepository) {
		return func(g *sourcev1.GitRepository) {
			withSecret("git-auth")(g)
			mutate(g)
		}
	}
	b := newGitRepository(t, ns, "b", git.HTTPURL("b"), authed(includes()))
	a := newGitRepository(t, ns, "a", git.HTTPURL("a"), authed(includes("b")))
	// outside includes a member of the cycle without being on it.
	outside := newGitRepository(t, ns, "outside", git.HTTPURL("outside"), authed(includes("a")))
	for _, o := range []*sourcev1.GitRepository{a, b, outside} {
		waitFor(t, 60*time.Second, o.Name+" Ready", o, func(g *sourcev1.GitRepository) bool {
			return conditions.IsReady(g) && g.Status.Artifact != nil
		})
	}

	// b now includes a: each would store a new artifact holding the
	// other's, forever.
	latest := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(b), latest); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(latest.DeepCopy())
	includes("a")(latest)
	if err := env.Client.Patch(context.Background(), latest, patch); err != nil {
		t.Fatal(err)
	}
	waitIncludeCycle(t, b, "b -> a -> b")
	// a learns of the cycle at its next reconcile.
	requestReconcile(t, a)
	gotA := waitIncludeCycle(t, a, "a -> b -> a")

	// Nothing builds on: the artifacts and the fetches stay as they are
	// while the others handle further requests.
	fetches := git.Fetches()
	for i := 0; i < 3; i++ {
		at := requestReconcile(t, outside)
		waitFor(t, 30*time.Second, "outside to handle the request", outside, func(g *sourcev1.GitRepository) bool {
			return g.Status.LastHandledReconcileAt == at
		})
	}
	now := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(a), now); err != nil {
		t.Fatal(err)
	}
	if now.Status.Artifact == nil || gotA.Status.Artifact == nil || now.Status.Artifact.Digest != gotA.Status.Artifact.Digest {
		t.Errorf("a's artifact changed after it stalled: %v -> %v", gotA.Status.Artifact, now.Status.Artifact)
	}
	if got := git.Fetches() - fetches; got != 0 {
		t.Errorf("%d fetches from the Git server while the cycle stood, want none", got)
	}

	// Breaking the cycle brings both back.
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(b), latest); err != nil {
		t.Fatal(err)
	}
	patch = client.MergeFrom(latest.DeepCopy())
	includes()(latest)
	if err := env.Client.Patch(context.Background(), latest, patch); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*sourcev1.GitRepository{a, b} {
		waitFor(t, 60*time.Second, o.Name+" Ready again", o, func(g *sourcev1.GitRepository) bool {
			return conditions.IsReady(g) && !conditions.IsStalled(g) && g.Status.ObservedGeneration == g.Generation
		})
	}
}
