package artifactgenerator_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// fixture is a namespace with a Git repository served on loopback and a
// GitRepository named "repo" that follows its main branch.
type fixture struct {
	t    *testing.T
	ns   string
	repo *testenv.Repo
	src  *sourcev1.GitRepository
}

func newFixture(t *testing.T, files map[string]string) *fixture {
	t.Helper()
	ns := env.Namespace(t)
	git := testenv.NewGitServer(t, "", "")
	repo := git.Repo(t, "monorepo")
	repo.Commit("main", files, "initial")
	src := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "repo"},
		Spec: sourcev1.GitRepositorySpec{
			URL:       git.HTTPURL("monorepo"),
			Interval:  metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		},
	}
	if err := env.Client.Create(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ns: ns, repo: repo, src: src}
}

// commit pushes a change and asks the GitRepository to fetch it, returning
// the new revision.
func (f *fixture) commit(files map[string]string, msg string) string {
	f.t.Helper()
	h := f.repo.Commit("main", files, msg)
	got := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(f.src), got); err != nil {
		f.t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	got.Annotations = map[string]string{meta.ReconcileRequestAnnotation: time.Now().Format(time.RFC3339Nano)}
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		f.t.Fatal(err)
	}
	return "main@sha1:" + h.String()
}

// generator creates an ArtifactGenerator reading the fixture's repository
// as alias "repo", with artifacts.
func (f *fixture) generator(name string, artifacts ...swapi.OutputArtifact) *swapi.ArtifactGenerator {
	f.t.Helper()
	ag := &swapi.ArtifactGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: swapi.ArtifactGeneratorSpec{
			Sources:         []swapi.SourceReference{{Alias: "repo", Kind: sourcev1.GitRepositoryKind, Name: "repo"}},
			OutputArtifacts: artifacts,
		},
	}
	if err := env.Client.Create(context.Background(), ag); err != nil {
		f.t.Fatalf("creating ArtifactGenerator %s: %v", name, err)
	}
	return ag
}

// copyOp is a copy operation from the repository.
func copyOp(from, to string) swapi.CopyOperation {
	return swapi.CopyOperation{From: from, To: to}
}

// waitGenerator polls the generator until cond holds.
func (f *fixture) waitGenerator(ag *swapi.ArtifactGenerator, what string, cond func(*swapi.ArtifactGenerator) bool) *swapi.ArtifactGenerator {
	f.t.Helper()
	got := &swapi.ArtifactGenerator{}
	testenv.WaitFor(f.t, 60*time.Second, func() string {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ag), got); err != nil {
			return err.Error()
		}
		if cond(got) {
			return ""
		}
		return fmt.Sprintf("ArtifactGenerator %s is not %s: %s", ag.Name, what, describe(got.Status.Conditions))
	})
	return got
}

// waitReady waits until the generator is Ready for its generation and the
// sources' current revisions.
func (f *fixture) waitReady(ag *swapi.ArtifactGenerator) *swapi.ArtifactGenerator {
	f.t.Helper()
	return f.waitGenerator(ag, "Ready", func(g *swapi.ArtifactGenerator) bool {
		return conditions.IsReady(g) && conditions.GetObservedGeneration(g, meta.ReadyCondition) == g.Generation
	})
}

// externalArtifact reads an ExternalArtifact, nil when it does not exist.
func (f *fixture) externalArtifact(name string) *sourcev1.ExternalArtifact {
	f.t.Helper()
	ea := &sourcev1.ExternalArtifact{}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, ea)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return ea
}

// waitArtifact waits for the ExternalArtifact to hold an artifact that cond
// accepts, and returns its files.
func (f *fixture) waitArtifact(name string, cond func(*meta.Artifact) bool) (*sourcev1.ExternalArtifact, map[string]string) {
	f.t.Helper()
	var ea *sourcev1.ExternalArtifact
	testenv.WaitFor(f.t, 60*time.Second, func() string {
		ea = f.externalArtifact(name)
		if ea == nil || ea.Status.Artifact == nil {
			return "ExternalArtifact " + name + " has no artifact"
		}
		if !cond(ea.Status.Artifact) {
			return fmt.Sprintf("ExternalArtifact %s has artifact %s", name, ea.Status.Artifact.Revision)
		}
		return ""
	})
	return ea, testenv.TarFiles(f.t, testenv.Download(f.t, ea.Status.Artifact))
}

func anyArtifact(*meta.Artifact) bool { return true }

func describe(cs []metav1.Condition) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "[%s=%s %s: %s] ", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

// names returns the keys of files, sorted, for messages.
func names(files map[string]string) string {
	out := make([]string, 0, len(files))
	for n := range files {
		out = append(out, n)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
