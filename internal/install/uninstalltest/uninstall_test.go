// Package uninstalltest runs install.Uninstall against a control plane of
// its own. Uninstall takes Flux's CRDs away from everything that uses the
// cluster, so it cannot share one with other tests; and no controller runs
// here, so that a finalizer stays until Uninstall itself removes it, as it
// would on a cluster whose controllers are gone.
package uninstalltest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

// No controller runs here: see the package comment.
func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.WithoutControllers()) }

// crdNames are the CRDs Install applies.
func crdNames(t *testing.T) []string {
	t.Helper()
	objs, err := install.Objects()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			names = append(names, o.GetName())
		}
	}
	return names
}

func createGitRepository(t *testing.T, ns, name string, finalizers ...string) *sourcev1.GitRepository {
	t.Helper()
	obj := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Finalizers: finalizers},
		Spec: sourcev1.GitRepositorySpec{
			URL:      "https://git.example.com/" + name + ".git",
			Interval: metav1.Duration{Duration: time.Hour},
		},
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating GitRepository %s: %v", name, err)
	}
	return obj
}

func createKustomization(t *testing.T, ns, name string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("kustomize.toolkit.fluxcd.io/v1")
	u.SetKind("Kustomization")
	u.SetNamespace(ns)
	u.SetName(name)
	u.Object["spec"] = map[string]any{
		"interval":  "10m",
		"prune":     true,
		"sourceRef": map[string]any{"kind": "GitRepository", "name": "apps"},
	}
	if err := env.Client.Create(context.Background(), u); err != nil {
		t.Fatalf("creating Kustomization %s: %v", name, err)
	}
}

// eventually polls check until it returns nil, or fails the test with its
// last error after timeout.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// crdsGone checks that no CRD Install applies is left, not even
// Terminating.
func crdsGone(t *testing.T) func() error {
	return func() error {
		for _, name := range crdNames(t) {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, crd)
			if err == nil {
				return fmt.Errorf("CRD %s is still there (deleting since %v, conditions %+v)", name, crd.DeletionTimestamp, crd.Status.Conditions)
			}
			if !apierrors.IsNotFound(err) {
				return err
			}
		}
		return nil
	}
}

func namespaceGone() error {
	ns := &corev1.Namespace{}
	err := env.Client.Get(context.Background(), client.ObjectKey{Name: install.Namespace}, ns)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("namespace %s is still there, %s", install.Namespace, ns.Status.Phase)
}

func TestUninstallRefusesWhileObjectsExist(t *testing.T) {
	ns := env.Namespace(t)
	createGitRepository(t, ns, "apps")
	createGitRepository(t, ns, "infra")
	createKustomization(t, ns, "apps")
	t.Cleanup(func() { deleteFluxObjects(t, ns) })
	// weir runs in the cluster: a refusal must not stop it either.
	weir := install.Options{Namespace: env.Namespace(t), Image: "weir:test"}
	if err := install.InstallComponents(context.Background(), env.Client, weir, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = install.UninstallComponents(context.Background(), env.Client, weir) })

	err := install.Uninstall(context.Background(), env.Client, weir, false, false)

	if !errors.Is(err, install.ErrInUse) {
		t.Fatalf("err = %v, want ErrInUse", err)
	}
	if !strings.Contains(err.Error(), "2 GitRepository, 1 Kustomization") {
		t.Errorf("error %q does not say what is in use (2 GitRepository, 1 Kustomization)", err)
	}
	for _, name := range crdNames(t) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, crd); err != nil {
			t.Errorf("CRD %s: %v", name, err)
		} else if crd.DeletionTimestamp != nil {
			t.Errorf("CRD %s is being deleted after a refusal", name)
		}
	}
	nsObj := &corev1.Namespace{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: install.Namespace}, nsObj); err != nil || nsObj.DeletionTimestamp != nil {
		t.Errorf("namespace %s after a refusal: err %v, deleting since %v", install.Namespace, err, nsObj.DeletionTimestamp)
	}
	repo := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "apps"}, repo); err != nil || repo.DeletionTimestamp != nil {
		t.Errorf("GitRepository apps after a refusal: err %v, deleting since %v", err, repo.DeletionTimestamp)
	}
	dep := &appsv1.Deployment{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: weir.Namespace, Name: install.Name}, dep); err != nil || dep.DeletionTimestamp != nil {
		t.Errorf("weir's Deployment after a refusal: err %v, deleting since %v", err, dep.DeletionTimestamp)
	}
}

func TestForceUninstallRemovesCRDsDespiteFinalizers(t *testing.T) {
	ns := env.Namespace(t)
	// The finalizer source-controller puts on every GitRepository; with no
	// controller running, nothing but Uninstall can take it off.
	createGitRepository(t, ns, "apps", sourcev1.SourceFinalizer)

	if err := install.Uninstall(context.Background(), env.Client, install.Options{}, true, false); err != nil {
		t.Fatalf("uninstalling with force: %v", err)
	}

	eventually(t, time.Minute, crdsGone(t))
	// The kind is no longer served, so the object is gone with it.
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "apps"}, &sourcev1.GitRepository{})
	if !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
		t.Errorf("reading the GitRepository after uninstall: err = %v, want not found", err)
	}
	// A deleted namespace stays Terminating while kube-controller-manager
	// empties it.
	eventually(t, time.Minute, namespaceGone)

	reinstall(t)
}

func TestUninstallCanKeepTheNamespace(t *testing.T) {
	if err := install.Uninstall(context.Background(), env.Client, install.Options{}, false, true); err != nil {
		t.Fatalf("uninstalling with no objects left: %v", err)
	}

	eventually(t, time.Minute, crdsGone(t))
	ns := &corev1.Namespace{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: install.Namespace}, ns); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("namespace %s with keepNamespace: err %v, deleting since %v", install.Namespace, err, ns.DeletionTimestamp)
	}

	reinstall(t)
}

// reinstall installs again after an uninstall and checks that the kinds
// work, as someone who uninstalled by mistake would.
func reinstall(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := install.Install(ctx, env.Client); err != nil {
		t.Fatalf("installing after uninstall: %v", err)
	}
	ns := env.Namespace(t)
	// The client's REST mapper may remember the kinds as gone for a moment.
	eventually(t, 30*time.Second, func() error {
		obj := &sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "again"},
			Spec:       sourcev1.GitRepositorySpec{URL: "https://git.example.com/again.git", Interval: metav1.Duration{Duration: time.Hour}},
		}
		err := env.Client.Create(ctx, obj)
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	deleteFluxObjects(t, ns)
}

// deleteFluxObjects deletes the GitRepositories and Kustomizations of ns
// and waits until they are gone: the namespace alone would take them away
// only as it finishes Terminating, after the next test has begun.
func deleteFluxObjects(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	lists := []*unstructured.UnstructuredList{{}, {}}
	lists[0].SetAPIVersion("source.toolkit.fluxcd.io/v1")
	lists[0].SetKind("GitRepositoryList")
	lists[1].SetAPIVersion("kustomize.toolkit.fluxcd.io/v1")
	lists[1].SetKind("KustomizationList")
	for _, list := range lists {
		item := &unstructured.Unstructured{}
		item.SetGroupVersionKind(list.GroupVersionKind().GroupVersion().WithKind(strings.TrimSuffix(list.GetKind(), "List")))
		if err := env.Client.DeleteAllOf(ctx, item, client.InNamespace(ns)); err != nil {
			t.Fatalf("deleting the %ss of %s: %v", item.GetKind(), ns, err)
		}
	}
	eventually(t, 30*time.Second, func() error {
		for _, list := range lists {
			if err := env.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
				return err
			}
			if n := len(list.Items); n > 0 {
				return fmt.Errorf("%d %s items left in %s", n, list.GetKind(), ns)
			}
		}
		return nil
	})
}
