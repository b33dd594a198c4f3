package manager_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/weirhq/weir/internal/manager"
	"github.com/weirhq/weir/internal/testenv"
)

// startManager runs a manager with opts until the test ends or the
// returned stop is called.
func startManager(t *testing.T, opts manager.Options) (stop func()) {
	t.Helper()
	m, err := manager.New(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// An in-cluster weir keeps its artifacts in an emptyDir: a restart finds
// the folder empty while every source's status still names its artifact.
// The sources store the same artifacts again, and what is built from them
// must follow at once, not at its next interval.
func TestRestartWithAnEmptyArtifactFolderRecovers(t *testing.T) {
	ns := env.Namespace(t)
	git := testenv.NewGitServer(t, "weir", "s3cret")
	git.Repo(t, "app").Commit("main", map[string]string{
		"deploy/configmap.yaml":               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-kustomization\ndata:\n  a: \"1\"\n",
		"charts/app/Chart.yaml":               "apiVersion: v2\nname: app\nversion: 0.1.0\n",
		"charts/app/templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-helm\ndata:\n  a: \"1\"\n",
	}, "app")
	secret := func() *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "git-auth"},
			Data: map[string][]byte{"username": []byte("weir"), "password": []byte("s3cret")}}
	}
	ctx := context.Background()
	objs := []client.Object{
		secret(),
		&sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
			Spec: sourcev1.GitRepositorySpec{
				URL: git.HTTPURL("app"), Interval: metav1.Duration{Duration: time.Hour},
				Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
				SecretRef: &meta.LocalObjectReference{Name: "git-auth"},
			},
		},
		&kustomizev1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
			Spec: kustomizev1.KustomizationSpec{
				Interval: metav1.Duration{Duration: time.Hour}, Path: "./deploy", Prune: true, TargetNamespace: ns,
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "app"},
			},
		},
		&helmv2.HelmRelease{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
			Spec: helmv2.HelmReleaseSpec{
				Interval: metav1.Duration{Duration: time.Hour},
				Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
					Chart:     "./charts/app",
					SourceRef: helmv2.CrossNamespaceObjectReference{Kind: sourcev1.GitRepositoryKind, Name: "app"},
				}},
			},
		},
	}

	opts := manager.DefaultOptions()
	opts.LeaderElect = false
	opts.MetricsAddr = "0"
	opts.HealthAddr = "0"
	opts.StoragePath = t.TempDir()
	// The same address after the restart, as a Service gives in a cluster.
	opts.StorageAddr = freeAddr(t)
	opts.Logger = zap.New(zap.WriteTo(io.Discard))
	stop := startManager(t, opts)
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	chart := &sourcev1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ns + "-app"}}
	watched := append(objs[1:], chart)
	for _, o := range watched {
		waitReady(t, o, 2*time.Minute)
	}

	stop()
	entries, err := os.ReadDir(opts.StoragePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(opts.StoragePath, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	// Without its credentials the GitRepository cannot store its artifact
	// again before the objects built from it find it missing.
	if err := env.Client.Delete(ctx, secret()); err != nil {
		t.Fatal(err)
	}
	startManager(t, opts)
	for _, o := range []client.Object{objs[2], objs[3]} {
		waitUntil(t, 2*time.Minute, client.ObjectKeyFromObject(o).String()+" to find its artifact missing", func() bool {
			return env.Client.Get(ctx, client.ObjectKeyFromObject(o), o) == nil && conditions.IsFalse(o.(conditions.Getter), meta.ReadyCondition)
		})
	}

	// The credentials come back; the GitRepository is asked to retry now
	// rather than after its back-off. Nothing else is asked: the others
	// must follow on their own.
	if err := env.Client.Create(ctx, secret()); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, objs[1])
	for _, o := range watched {
		waitReady(t, o, time.Minute)
	}
}

func waitReady(t *testing.T, o client.Object, timeout time.Duration) {
	t.Helper()
	key := client.ObjectKeyFromObject(o)
	deadline := time.Now().Add(timeout)
	for {
		err := env.Client.Get(context.Background(), key, o)
		g := o.(conditions.Getter)
		if err == nil && conditions.IsReady(g) && o.GetGeneration() == observedGeneration(o) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%T %s not Ready after %s: %v", o, key, timeout, conditions.Get(g, meta.ReadyCondition))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func observedGeneration(o client.Object) int64 {
	switch o := o.(type) {
	case *sourcev1.GitRepository:
		return o.Status.ObservedGeneration
	case *sourcev1.HelmChart:
		return o.Status.ObservedGeneration
	case *kustomizev1.Kustomization:
		return o.Status.ObservedGeneration
	case *helmv2.HelmRelease:
		return o.Status.ObservedGeneration
	}
	return o.GetGeneration()
}

// requestReconcile sets reconcile.fluxcd.io/requestedAt as `flux reconcile` does.
func requestReconcile(t *testing.T, o client.Object) {
	t.Helper()
	patch := client.MergeFrom(o.DeepCopyObject().(client.Object))
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[meta.ReconcileRequestAnnotation] = time.Now().Format(time.RFC3339Nano)
	o.SetAnnotations(ann)
	if err := env.Client.Patch(context.Background(), o, patch); err != nil {
		t.Fatalf("requesting a reconcile: %v", err)
	}
}
