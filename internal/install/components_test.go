package install_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/install"
)

// exported reads `weir install --export` for o.
func exported(t *testing.T, o *install.Options) []*unstructured.Unstructured {
	t.Helper()
	var buf bytes.Buffer
	if err := install.Export(&buf, o); err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	rd := utilyaml.NewYAMLReader(bufio.NewReader(&buf))
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatalf("the export holds a document that is not YAML: %v", err)
		}
		if u.Object != nil {
			objs = append(objs, u)
		}
	}
}

// Every object of `weir install --export`, in both RBAC modes, is valid
// for the real API server: a server-side dry run accepts each one (none is
// stored), and the stream holds what runs weir as the issue lists it.
func TestExportIsAcceptedByTheAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	for _, least := range []bool{false, true} {
		objs := exported(t, &install.Options{Namespace: ns, LeastPrivilege: least, Image: "registry.example/weir:test"})
		kinds := map[string]int{}
		for _, o := range objs {
			kinds[o.GetKind()]++
			if o.GetKind() == "CustomResourceDefinition" || o.GetKind() == "Namespace" {
				continue
			}
			if err := env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(install.FieldManager), client.DryRunAll); err != nil {
				t.Errorf("least privilege %v: the API server refuses %s %s: %v", least, o.GetKind(), o.GetName(), err)
			}
		}
		for kind, want := range map[string]int{"Deployment": 1, "ServiceAccount": 1, "Service": 3, "NetworkPolicy": 3, "PodDisruptionBudget": 1, "ClusterRole": 1, "Namespace": 2} {
			if kinds[kind] != want {
				t.Errorf("least privilege %v: %d %s in the export, want %d", least, kinds[kind], kind, want)
			}
		}
		if bindings := kinds["ClusterRoleBinding"]; least && bindings != 1 || !least && bindings != 2 {
			t.Errorf("least privilege %v: %d ClusterRoleBindings", least, bindings)
		}
	}
	// A dry run stores nothing.
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: install.Name}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("the dry run left a Deployment behind: %v", err)
	}
}

// The Deployment runs weir as the issue asks: non-root, read-only root
// file system, no privilege escalation, RuntimeDefault seccomp, GOMEMLIMIT
// from the memory limit, probes on the health endpoints, an emptyDir for
// the artifact store, leader election; least privilege adds Flux's
// multi-tenancy flags.
func TestTheDeploymentIsLockedDown(t *testing.T) {
	for _, least := range []bool{false, true} {
		var dep appsv1.Deployment
		for _, o := range exported(t, &install.Options{LeastPrivilege: least}) {
			if o.GetKind() == "Deployment" {
				b, _ := yaml.Marshal(o.Object)
				if err := yaml.UnmarshalStrict(b, &dep); err != nil {
					t.Fatal(err)
				}
			}
		}
		pod := dep.Spec.Template.Spec
		if len(pod.Containers) != 1 {
			t.Fatalf("%d containers", len(pod.Containers))
		}
		c := pod.Containers[0]
		sc := c.SecurityContext
		switch {
		case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Error("the root file system is writable")
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Error("privilege escalation is allowed")
		case pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || *pod.SecurityContext.RunAsUser != 65532:
			t.Error("the pod may run as root")
		case pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
			t.Error("no RuntimeDefault seccomp profile")
		case c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz":
			t.Error("the probes are not on /healthz and /readyz")
		case c.Resources.Limits.Memory().IsZero():
			t.Error("no memory limit")
		}
		memlimit := false
		for _, e := range c.Env {
			memlimit = memlimit || e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory"
		}
		if !memlimit {
			t.Error("GOMEMLIMIT is not taken from the memory limit")
		}
		if len(c.Args) == 0 || c.Args[0] != "controller" || !slices.Contains(c.Args, "--leader-elect") || !slices.Contains(c.Args, "--storage-path=/data") {
			t.Errorf("args %v", c.Args)
		}
		data := false
		for _, v := range pod.Volumes {
			data = data || v.Name == "data" && v.EmptyDir != nil
		}
		if !data {
			t.Error("no emptyDir for the artifact store")
		}
		if got := slices.Contains(c.Args, "--default-service-account=default") && slices.Contains(c.Args, "--no-cross-namespace-refs=true"); got != least {
			t.Errorf("least privilege %v: args %v", least, c.Args)
		}
		if dep.Labels["app.kubernetes.io/part-of"] != "flux" || dep.Labels["app.kubernetes.io/instance"] != "flux-system" {
			t.Errorf("labels %v: the flux CLI finds controllers by part-of=flux and instance", dep.Labels)
		}
	}
}

// weir installed into a namespace: the Deployment turns Available, a
// second install changes nothing (no object's resourceVersion moves), and
// uninstalling leaves none of its objects behind.
func TestInstallThenUninstallLeavesNothing(t *testing.T) {
	ctx := context.Background()
	o := install.Options{Namespace: env.Namespace(t), Image: "registry.example/weir:test"}
	if err := install.InstallComponents(ctx, env.Client, o, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	comps, err := install.Components(o)
	if err != nil {
		t.Fatal(err)
	}
	versions := func() map[string]string {
		v := map[string]string{}
		for _, c := range comps {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(c.GroupVersionKind())
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(c), got); err != nil {
				t.Fatalf("reading %s %s: %v", c.GetKind(), c.GetName(), err)
			}
			v[c.GetKind()+"/"+c.GetName()] = got.GetResourceVersion()
		}
		return v
	}
	before := versions()
	if err := install.InstallComponents(ctx, env.Client, o, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	after := versions()
	for k, v := range before {
		if after[k] != v && !strings.HasPrefix(k, "Deployment/") {
			t.Errorf("installing again changed %s", k)
		}
	}
	dep := &appsv1.Deployment{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: install.Name}, dep); err != nil {
		t.Fatal(err)
	}
	if dep.Generation != 1 {
		t.Errorf("installing again rolled the Deployment out again (generation %d)", dep.Generation)
	}

	// Installing again in least-privilege mode takes cluster-admin away.
	binding := &rbacv1.ClusterRoleBinding{}
	admin := client.ObjectKey{Name: "weir-cluster-reconciler-" + o.Namespace}
	if err := env.Client.Get(ctx, admin, binding); err != nil || binding.RoleRef.Name != "cluster-admin" {
		t.Fatalf("the default install has no cluster-admin binding: %v %v", err, binding.RoleRef)
	}
	least := o
	least.LeastPrivilege = true
	if err := install.InstallComponents(ctx, env.Client, least, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, admin, binding); !apierrors.IsNotFound(err) {
		t.Errorf("the cluster-admin binding stayed after installing with --least-privilege (%v)", err)
	}

	if err := install.UninstallComponents(ctx, env.Client, o); err != nil {
		t.Fatal(err)
	}
	for _, c := range comps {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(c.GroupVersionKind())
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(c), got); !apierrors.IsNotFound(err) {
			t.Errorf("%s %s is still there after uninstall (%v)", c.GetKind(), c.GetName(), err)
		}
	}
	pods := &corev1.PodList{}
	if err := env.Client.List(ctx, pods, client.InNamespace(o.Namespace)); err != nil || len(pods.Items) != 0 {
		t.Errorf("%d pods left (%v)", len(pods.Items), err)
	}
}

// The CRDs carry the labels by which the flux CLI finds Flux's CRDs.
func TestCRDsCarryFluxsLabels(t *testing.T) {
	for _, o := range exported(t, nil) {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		l := o.GetLabels()
		component := l["app.kubernetes.io/component"]
		if o.GetName() == "fluxinstances.fluxcd.controlplane.io" && component != "flux-operator" {
			t.Errorf("CRD %s has component %q, want flux-operator", o.GetName(), component)
		}
		if l["app.kubernetes.io/part-of"] != "flux" || l["app.kubernetes.io/instance"] != "flux-system" || l["app.kubernetes.io/version"] == "" ||
			!(strings.HasSuffix(component, "-controller") || component == "flux-operator") {
			t.Errorf("CRD %s has labels %v", o.GetName(), l)
		}
	}
	got := installedCRDs(t)
	if l := got["kustomizations.kustomize.toolkit.fluxcd.io"].Labels; l["app.kubernetes.io/component"] != "kustomize-controller" {
		t.Errorf("the installed Kustomization CRD has labels %v", l)
	}
}
