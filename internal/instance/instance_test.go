package instance_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/instance"
	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// seedInstance reads testdata/flux-instance.yaml (the seed's FluxInstance)
// with its Git URL pointing at url.
func seedInstance(t *testing.T, url string) *v1.FluxInstance {
	t.Helper()
	b, err := os.ReadFile("testdata/flux-instance.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.ReplaceAll(string(b), "ssh://git@github.com/owner/home-ops.git", url))
	fi := &v1.FluxInstance{}
	if err := yaml.UnmarshalStrict(b, fi); err != nil {
		t.Fatalf("reading the seed's FluxInstance: %v", err)
	}
	return fi
}

func getInstance(t *testing.T, ns string) *v1.FluxInstance {
	t.Helper()
	fi := &v1.FluxInstance{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: v1.InstanceName}, fi); err != nil {
		t.Fatal(err)
	}
	return fi
}

func configMapExists(t *testing.T, ns, name string) bool {
	t.Helper()
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func configMap(ns, name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\ndata:\n  k: v\n"
}

// TestSeedInstanceSyncs applies the seed's FluxInstance (with a loopback
// SSH Git server and its deploy key Secret, as bootstrap makes them), waits
// for the sync, moves spec.sync.path, and deletes the instance.
func TestSeedInstanceSyncs(t *testing.T) {
	ctx := context.Background()
	apps := env.Namespace(t)
	git := testenv.NewGitServer(t, "", "")
	repo := git.Repo(t, "home-ops")
	repo.Commit("main", map[string]string{
		"kubernetes/flux/cluster/app.yaml": configMap(apps, "from-cluster"),
		"kubernetes/flux/other/app.yaml":   configMap(apps, "from-other"),
	}, "two sync roots")

	const ns = "flux-system"
	key := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "github-deploy-key"},
		Data:       map[string][]byte{"identity": testenv.SSHIdentity(t), "known_hosts": git.KnownHosts(t)},
	}
	if err := env.Client.Create(ctx, key); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, key) })

	fi := seedInstance(t, git.SSHURL("home-ops"))
	if err := env.Client.Create(ctx, fi); err != nil {
		t.Fatalf("creating the seed's FluxInstance: %v", err)
	}
	t.Cleanup(func() { deleteInstance(t, ns) })

	testenv.WaitFor(t, 60*time.Second, func() string {
		fi := getInstance(t, ns)
		if !conditions.IsTrue(fi, meta.ReadyCondition) {
			return "FluxInstance not Ready: " + conditions.GetMessage(fi, meta.ReadyCondition)
		}
		if !configMapExists(t, apps, "from-cluster") {
			return "the sync did not apply kubernetes/flux/cluster"
		}
		return ""
	})
	fi = getInstance(t, ns)
	first := fi.Status.LastAppliedRevision
	if !strings.Contains(first, "@sha256:") || fi.Status.LastAttemptedRevision != first {
		t.Errorf("revisions: applied %q, attempted %q; want <version>@sha256:<digest>, equal", first, fi.Status.LastAttemptedRevision)
	}
	var ids []string
	for _, e := range fi.Status.Inventory.Entries {
		ids = append(ids, e.ID)
	}
	want := []string{"flux-system_flux-system_kustomize.toolkit.fluxcd.io_Kustomization", "flux-system_flux-system_source.toolkit.fluxcd.io_GitRepository"}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("inventory %v, want %v", ids, want)
	}
	gr := &sourcev1.GitRepository{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ns}, gr); err != nil {
		t.Fatal(err)
	}
	if gr.Spec.Reference == nil || gr.Spec.Reference.Branch != "main" || gr.Spec.SecretRef == nil || gr.Spec.SecretRef.Name != "github-deploy-key" ||
		gr.Spec.Interval.Duration != time.Minute || gr.Labels["app.kubernetes.io/name"] != "flux" || gr.Labels[instance.NameLabel] != "flux" {
		t.Errorf("GitRepository spec %+v labels %v: want branch main, secretRef github-deploy-key, interval 1m, commonMetadata and instance labels", gr.Spec, gr.Labels)
	}
	if len(fi.Status.Components) != 4 || fi.Status.Components[0].Name != "source-controller" {
		t.Errorf("status.components = %+v, want the four components", fi.Status.Components)
	}

	// The report next to it.
	rep := &v1.FluxReport{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flux"}, rep); err != nil {
		t.Fatalf("reading the FluxReport: %v", err)
	}
	if s := rep.Spec.SyncStatus; s == nil || s.ID != "kustomization/flux-system/flux-system" || s.Path != "kubernetes/flux/cluster" {
		t.Errorf("FluxReport sync = %+v", s)
	}
	if rep.Spec.Cluster == nil || rep.Spec.Cluster.Nodes < 1 || !strings.HasPrefix(rep.Spec.Cluster.ServerVersion, "v1.") {
		t.Errorf("FluxReport cluster = %+v, want the server version and the nodes", rep.Spec.Cluster)
	}
	// The report is refreshed after the objects it counts change: the
	// sync's Kustomization turning Ready reaches it a moment later.
	testenv.WaitFor(t, 30*time.Second, func() string {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flux"}, rep); err != nil {
			return err.Error()
		}
		for _, s := range rep.Spec.ReconcilersStatus {
			if s.Kind == "Kustomization" && s.Stats.Running >= 1 {
				return ""
			}
		}
		return fmt.Sprintf("FluxReport reconcilers = %+v, want Ready Kustomizations counted", rep.Spec.ReconcilersStatus)
	})

	// Moving the sync's path moves what the cluster applies.
	fi.Spec.Sync.Path = "kubernetes/flux/other"
	if err := env.Client.Update(ctx, fi); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 60*time.Second, func() string {
		ks := &kustomizev1.Kustomization{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ns}, ks); err != nil {
			return err.Error()
		}
		if ks.Spec.Path != "kubernetes/flux/other" {
			return "Kustomization path is still " + ks.Spec.Path
		}
		if !configMapExists(t, apps, "from-other") || configMapExists(t, apps, "from-cluster") {
			return "the sync has not moved to kubernetes/flux/other"
		}
		fi := getInstance(t, ns)
		if !conditions.IsTrue(fi, meta.ReadyCondition) || fi.Status.LastAppliedRevision == first {
			return "FluxInstance not Ready at a new revision: " + conditions.GetMessage(fi, meta.ReadyCondition)
		}
		return ""
	})

	// Deleting the instance removes the sync, not what it applied.
	// The sync objects carry their own finalizers: they go once their
	// reconcilers have let them go.
	deleteInstance(t, ns)
	testenv.WaitFor(t, 30*time.Second, func() string {
		for _, o := range []client.Object{&sourcev1.GitRepository{}, &kustomizev1.Kustomization{}} {
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ns}, o); !apierrors.IsNotFound(err) {
				return fmt.Sprintf("%T flux-system/flux-system after deleting the instance: %v, want not found", o, err)
			}
		}
		return ""
	})
	testenv.WaitFor(t, 10*time.Second, func() string {
		if !configMapExists(t, apps, "from-other") {
			return "deleting the FluxInstance deleted the workloads of its sync"
		}
		return ""
	})
}

// deleteInstance deletes the FluxInstance in ns and waits until it is gone.
func deleteInstance(t *testing.T, ns string) {
	t.Helper()
	fi := &v1.FluxInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1.InstanceName}}
	if err := env.Client.Delete(context.Background(), fi); apierrors.IsNotFound(err) {
		return
	} else if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, func() string {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(fi), fi)
		if apierrors.IsNotFound(err) {
			return ""
		}
		return "the FluxInstance is still there"
	})
}

// TestSecondInstanceIsRefused: the API server refuses any name but flux,
// and a second flux in another namespace stalls, naming the first.
func TestSecondInstanceIsRefused(t *testing.T) {
	ctx := context.Background()
	first := env.Namespace(t)
	second := env.Namespace(t)
	sync := &v1.Sync{Kind: "GitRepository", URL: "https://127.0.0.1:1/none.git", Ref: "refs/heads/main", Path: "."}
	mk := func(ns, name string) *v1.FluxInstance {
		return &v1.FluxInstance{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       v1.FluxInstanceSpec{Distribution: v1.Distribution{Version: "2.x", Registry: "ghcr.io/fluxcd"}, Sync: sync},
		}
	}
	err := env.Client.Create(ctx, mk(first, "flux-two"))
	if err == nil || !strings.Contains(err.Error(), "the only accepted name for a FluxInstance is 'flux'") {
		t.Errorf("creating a FluxInstance named flux-two: %v, want refused with the name rule", err)
	}
	if err := env.Client.Create(ctx, mk(first, v1.InstanceName)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteInstance(t, first) })
	// One second apart, so that the first is the older.
	time.Sleep(1100 * time.Millisecond)
	if err := env.Client.Create(ctx, mk(second, v1.InstanceName)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteInstance(t, second) })
	testenv.WaitFor(t, 30*time.Second, func() string {
		fi := getInstance(t, second)
		msg := conditions.GetMessage(fi, meta.ReadyCondition)
		if conditions.GetReason(fi, meta.ReadyCondition) != instance.ConflictReason || !strings.Contains(msg, "FluxInstance "+first+"/flux already does") {
			return "second instance: " + conditions.GetReason(fi, meta.ReadyCondition) + ": " + msg
		}
		return ""
	})
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: second, Name: second}, &sourcev1.GitRepository{}); !apierrors.IsNotFound(err) {
		t.Errorf("the stalled instance made its sync's GitRepository: %v", err)
	}
	if fi := getInstance(t, first); conditions.GetReason(fi, meta.ReadyCondition) == instance.ConflictReason {
		t.Errorf("the first instance stalled too: %s", conditions.GetMessage(fi, meta.ReadyCondition))
	}
}

// TestDisabledInstanceKeepsItsObjects: deleting an instance annotated
// fluxcd.controlplane.io/reconcile: disabled leaves its sync in place.
func TestDisabledInstanceKeepsItsObjects(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	fi := &v1.FluxInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1.InstanceName},
		Spec: v1.FluxInstanceSpec{
			Distribution: v1.Distribution{Version: "2.x", Registry: "ghcr.io/fluxcd"},
			Sync:         &v1.Sync{Kind: "OCIRepository", URL: "oci://127.0.0.1:1/manifests", Ref: "latest", Path: "./"},
		},
	}
	if err := env.Client.Create(ctx, fi); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, func() string {
		if inv := getInstance(t, ns).Status.Inventory; inv == nil || len(inv.Entries) != 2 {
			return "the instance has not applied its sync"
		}
		return ""
	})
	oci := &sourcev1.OCIRepository{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ns}, oci); err != nil {
		t.Fatal(err)
	}
	if oci.Spec.Reference == nil || oci.Spec.Reference.Tag != "latest" {
		t.Errorf("OCIRepository ref = %+v, want tag latest", oci.Spec.Reference)
	}
	fi = getInstance(t, ns)
	if r := conditions.GetReason(fi, meta.ReadyCondition); r != instance.WaitingReason && r != meta.ProgressingReason {
		t.Errorf("Ready reason %q while the OCI source cannot be reached, want %s or %s", r, instance.WaitingReason, meta.ProgressingReason)
	}
	patch := client.MergeFrom(fi.DeepCopy())
	fi.Annotations = map[string]string{v1.ReconcileAnnotation: v1.DisabledValue}
	if err := env.Client.Patch(ctx, fi, patch); err != nil {
		t.Fatal(err)
	}
	deleteInstance(t, ns)
	for _, o := range []client.Object{&sourcev1.OCIRepository{}, &kustomizev1.Kustomization{}} {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ns}, o); err != nil {
			t.Errorf("%T after deleting a disabled instance: %v, want kept", o, err)
		}
	}
}
