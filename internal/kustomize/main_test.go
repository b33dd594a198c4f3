package kustomize_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.WithEtcdMaxRequestBytes(etcdMaxRequestBytes))
}

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
	repo := git.Repo(t, "cluster")
	repo.Commit("main", files, "initial")
	src := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "repo"},
		Spec: sourcev1.GitRepositorySpec{
			URL:       git.HTTPURL("cluster"),
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
	rev := "main@sha1:" + h.String()
	got := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(f.src), got); err != nil {
		f.t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	got.Annotations = map[string]string{meta.ReconcileRequestAnnotation: time.Now().Format(time.RFC3339Nano)}
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		f.t.Fatal(err)
	}
	return rev
}

// kustomization creates a Kustomization of path on the fixture's source.
func (f *fixture) kustomization(name, path string, mutate func(*kustomizev1.Kustomization)) *kustomizev1.Kustomization {
	f.t.Helper()
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: time.Hour},
			Path:            path,
			Prune:           true,
			TargetNamespace: f.ns,
			Timeout:         &metav1.Duration{Duration: 30 * time.Second},
			SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"},
		},
	}
	if mutate != nil {
		mutate(ks)
	}
	if err := env.Client.Create(context.Background(), ks); err != nil {
		f.t.Fatalf("creating Kustomization %s: %v", name, err)
	}
	return ks
}

// wait polls the Kustomization until cond holds.
func (f *fixture) wait(ks *kustomizev1.Kustomization, timeout time.Duration, what string, cond func(*kustomizev1.Kustomization) bool) *kustomizev1.Kustomization {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := &kustomizev1.Kustomization{}
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), got)
		if err == nil && cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out after %s waiting for %s %s; status: %s", timeout, ks.Name, what, describe(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitApplied waits until Ready=True with revision applied.
func (f *fixture) waitApplied(ks *kustomizev1.Kustomization, revision string) *kustomizev1.Kustomization {
	f.t.Helper()
	return f.wait(ks, 60*time.Second, "to apply "+revision, func(k *kustomizev1.Kustomization) bool {
		return conditions.IsReady(k) && k.Status.LastAppliedRevision == revision && k.Status.ObservedGeneration == k.Generation
	})
}

// waitReason waits until Ready=False with reason.
func (f *fixture) waitReason(ks *kustomizev1.Kustomization, reason string) *kustomizev1.Kustomization {
	f.t.Helper()
	return f.wait(ks, 60*time.Second, "Ready=False/"+reason, func(k *kustomizev1.Kustomization) bool {
		return conditions.IsFalse(k, meta.ReadyCondition) && conditions.GetReason(k, meta.ReadyCondition) == reason
	})
}

// revision waits for the GitRepository's artifact and returns its revision.
func (f *fixture) revision() string {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := &sourcev1.GitRepository{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(f.src), got); err == nil && got.Status.Artifact != nil {
			return got.Status.Artifact.Revision
		}
		if time.Now().After(deadline) {
			f.t.Fatal("the GitRepository has no artifact")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describe(k *kustomizev1.Kustomization) string {
	s := ""
	for _, c := range k.Status.Conditions {
		s += fmt.Sprintf("[%s=%s %s: %s] ", c.Type, c.Status, c.Reason, c.Message)
	}
	return s + "applied " + k.Status.LastAppliedRevision
}

const configMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
data:
  key: "%s"
`

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
spec:
  replicas: 2
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
        - name: app
          image: example.invalid/app:1
`
