package install

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/version"
)

// DefaultImage is the image `weir install` runs unless told otherwise:
// weir's own, at the version of the binary that installs it.
func DefaultImage() string {
	v := version.Version
	if v == "" || v == "dev" {
		v = "latest"
	}
	return "ghcr.io/weirhq/weir:" + strings.TrimPrefix(v, "v")
}

// Name is the name of weir's Deployment, ServiceAccount and pod label.
const Name = "weir"

// The ports weir listens on in the cluster, and the Services that expose
// them under the names Flux's installation uses, so that artifact URLs,
// HTTPRoutes to the webhook receiver and scrape configurations written for
// Flux keep working.
const (
	artifactPort = 9090 // --storage-addr, Service source-controller:80
	receiverPort = 9292 // the webhook receiver, Service webhook-receiver:80
	metricsPort  = 8080 // --metrics-addr
	healthPort   = 9440 // --health-addr
)

// Options say how weir runs in the cluster.
type Options struct {
	// Namespace holds weir and its objects; "" means flux-system.
	Namespace string
	// Image is weir's image; "" means DefaultImage.
	Image string
	// Replicas is the Deployment's replica count (they elect a leader);
	// 0 means 1.
	Replicas int32
	// LeastPrivilege binds weir to the permissions it needs for itself
	// instead of cluster-admin: every Kustomization and HelmRelease acts as
	// its spec.serviceAccountName, or as DefaultServiceAccount of its own
	// namespace, and cannot refer to sources in other namespaces (Flux's
	// multi-tenancy lockdown).
	LeastPrivilege bool
	// DefaultServiceAccount is the service account objects that name none
	// act as in LeastPrivilege mode; "" means "default".
	DefaultServiceAccount string
	// Components are the Flux controllers weir runs the reconcilers of
	// (`weir controller --components`); empty means all of them.
	Components []string
	// NoNetworkPolicy leaves out the NetworkPolicies Flux ships.
	NoNetworkPolicy bool
	// ClusterDomain is the cluster's DNS domain in artifact URLs; ""
	// means cluster.local.
	ClusterDomain string
}

func (o Options) namespace() string {
	if o.Namespace == "" {
		return Namespace
	}
	return o.Namespace
}

// ImageRef is the image weir runs: Image, or DefaultImage.
func (o Options) ImageRef() string {
	if o.Image == "" {
		return DefaultImage()
	}
	return o.Image
}

// labels are set on every object weir's installation makes: Flux's own
// (the flux CLI finds controllers and CRDs by app.kubernetes.io/part-of=flux
// and instance) and weir's name, by which Uninstall finds them.
func (o Options) labels() map[string]string {
	v := version.Version
	if v == "" {
		v = "dev"
	}
	return map[string]string{
		"app.kubernetes.io/part-of":   "flux",
		"app.kubernetes.io/instance":  o.namespace(),
		"app.kubernetes.io/name":      Name,
		"app.kubernetes.io/component": Name,
		"app.kubernetes.io/version":   v,
	}
}

// selectorLabels select weir's pods.
var selectorLabels = map[string]string{"app": Name}

// Components returns the in-cluster objects that run weir, in apply
// order: its ServiceAccount, RBAC, Services, NetworkPolicies,
// PodDisruptionBudget and Deployment. The CRDs and namespace are Objects'.
func Components(o Options) ([]*unstructured.Unstructured, error) {
	ns := o.namespace()
	meta := func(name string, namespaced bool) metav1.ObjectMeta {
		m := metav1.ObjectMeta{Name: name, Labels: o.labels()}
		if namespaced {
			m.Namespace = ns
		}
		return m
	}
	var typed []runtime.Object
	typed = append(typed, &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: meta(Name, true),
	})
	typed = append(typed, rbac(o, meta)...)
	typed = append(typed, services(meta)...)
	if !o.NoNetworkPolicy {
		typed = append(typed, networkPolicies(meta)...)
	}
	typed = append(typed, &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta(Name, true),
		Spec: policyv1.PodDisruptionBudgetSpec{
			// One replica at a time: a drain moves weir, and with several
			// replicas one stays to hold the lease.
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: selectorLabels},
		},
	})
	typed = append(typed, deployment(o, meta))
	out := make([]*unstructured.Unstructured, 0, len(typed))
	for _, t := range typed {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(t)
		if err != nil {
			return nil, fmt.Errorf("converting %T: %w", t, err)
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		out = append(out, u)
	}
	return out, nil
}

// fluxGroups are the API groups of the kinds weir reconciles.
var fluxGroups = []string{
	"source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io",
	"notification.toolkit.fluxcd.io", "image.toolkit.fluxcd.io", "fluxcd.controlplane.io",
	"source.extensions.fluxcd.io",
}

// rbac is weir's RBAC: cluster-admin by default, as Flux's installation
// binds its reconcilers; in least-privilege mode, what weir itself does
// (its kinds, reading what they refer to, events, its lease, and acting
// as the tenants' service accounts, which hold the rights to apply).
func rbac(o Options, meta func(string, bool) metav1.ObjectMeta) []runtime.Object {
	ns := o.namespace()
	sa := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: Name, Namespace: ns}}
	crd := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: meta("weir-controller-"+ns, false),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: fluxGroups, Resources: []string{"*"}, Verbs: []string{"*"}},
			// Reading any kind: sources' credentials, substituteFrom and
			// valuesFrom, and the health checks and drift detection of
			// what tenants apply. Writing them is the tenants' accounts'.
			{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"*"}},
			// Tenants' objects act as their service accounts.
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"impersonate"}},
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}},
		},
	}
	bind := func(name, role string) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: meta(name, false),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   sa,
		}
	}
	// The leader labels its own pod for the artifact Service.
	leader := &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: meta("weir-leader", true),
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "patch"}}},
	}
	leaderBinding := &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: meta("weir-leader", true),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: leader.Name},
		Subjects:   sa,
	}
	objs := []runtime.Object{crd, bind("weir-controller-"+ns, crd.Name), leader, leaderBinding}
	if !o.LeastPrivilege {
		// As Flux's cluster-reconciler binding: whatever Git declares.
		objs = append(objs, bind(clusterReconciler(ns), "cluster-admin"))
	}
	return objs
}

// clusterReconciler names the binding of weir to cluster-admin.
func clusterReconciler(ns string) string { return "weir-cluster-reconciler-" + ns }

// services expose the artifact store, the webhook receiver and the
// metrics, under the names Flux's installation gives the first two.
func services(meta func(string, bool) metav1.ObjectMeta) []runtime.Object {
	svc := func(name string, port int32, target string) *corev1.Service {
		selector := selectorLabels
		if name == "source-controller" {
			// Only the leader serves artifacts; it labels its pod.
			selector = map[string]string{"app": Name, kube.LeaderLabel: "true"}
		}
		return &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: meta(name, true),
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeClusterIP,
				Selector: selector,
				Ports:    []corev1.ServicePort{{Name: "http", Port: port, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString(target)}},
			},
		}
	}
	return []runtime.Object{
		svc("source-controller", 80, "http"),
		svc("webhook-receiver", 80, "http-webhook"),
		svc("weir-metrics", metricsPort, "http-prom"),
	}
}

// networkPolicies are Flux's three: pods of the namespace talk to each
// other and to anything outside, metrics can be scraped from any
// namespace, and the webhook receiver is reachable from anywhere (and,
// unlike Flux's, only its port).
func networkPolicies(meta func(string, bool) metav1.ObjectMeta) []runtime.Object {
	np := func(name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
			ObjectMeta: meta(name, true),
			Spec:       spec,
		}
	}
	anyNamespace := []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}
	tcp := ptr.To(corev1.ProtocolTCP)
	return []runtime.Object{
		np("allow-egress", networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		}),
		np("allow-scraping", networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  anyNamespace,
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: tcp, Port: ptr.To(intstr.FromInt32(metricsPort))}},
			}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		}),
		np("allow-webhooks", networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: selectorLabels},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  anyNamespace,
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: tcp, Port: ptr.To(intstr.FromInt32(receiverPort))}},
			}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		}),
	}
}

// deployment runs `weir controller`: non-root, read-only root file
// system, no privilege escalation, RuntimeDefault seccomp, the artifact
// store in an emptyDir, GOMEMLIMIT and GOMAXPROCS from its limits, probes
// on the health endpoints, and leader election so that replicas can run
// side by side.
func deployment(o Options, meta func(string, bool) metav1.ObjectMeta) *appsv1.Deployment {
	replicas := o.Replicas
	if replicas == 0 {
		replicas = 1
	}
	domain := o.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	args := []string{
		"controller",
		"--leader-elect",
		"--storage-path=/data",
		fmt.Sprintf("--storage-addr=:%d", artifactPort),
		"--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc." + domain + ".",
		fmt.Sprintf("--metrics-addr=:%d", metricsPort),
		fmt.Sprintf("--health-addr=:%d", healthPort),
		fmt.Sprintf("--receiver-addr=:%d", receiverPort),
		"--log-encoding=json",
		"--log-level=info",
	}
	if len(o.Components) > 0 {
		args = append(args, "--components="+strings.Join(o.Components, ","))
	}
	if o.LeastPrivilege {
		sa := o.DefaultServiceAccount
		if sa == "" {
			sa = "default"
		}
		// weir may not write its own RBAC: a FluxInstance does not
		// manage this installation, `weir install` does.
		args = append(args, "--default-service-account="+sa, "--no-cross-namespace-refs=true", "--no-remote-bases=true", "--manage-installation=false")
	}
	podLabels := map[string]string{}
	for k, v := range o.labels() {
		podLabels[k] = v
	}
	for k, v := range selectorLabels {
		podLabels[k] = v
	}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("healthz")}}}
	}
	fromField := func(name, resourceName string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "manager", Resource: resourceName}}}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(Name, true),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selectorLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      podLabels,
					Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": fmt.Sprint(metricsPort)},
				},
				Spec: corev1.PodSpec{
					ServiceAccountName:            Name,
					TerminationGracePeriodSeconds: ptr.To[int64](10),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](65532),
						RunAsGroup:     ptr.To[int64](65532),
						FSGroup:        ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
					Containers: []corev1.Container{{
						Name:            "manager",
						Image:           o.ImageRef(),
						ImagePullPolicy: corev1.PullIfNotPresent,
						Args:            args,
						Env: []corev1.EnvVar{
							{Name: "RUNTIME_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
							{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
							fromField("GOMAXPROCS", "limits.cpu"),
							fromField("GOMEMLIMIT", "limits.memory"),
						},
						Ports: []corev1.ContainerPort{
							{Name: "http", ContainerPort: artifactPort, Protocol: corev1.ProtocolTCP},
							{Name: "http-webhook", ContainerPort: receiverPort, Protocol: corev1.ProtocolTCP},
							{Name: "http-prom", ContainerPort: metricsPort, Protocol: corev1.ProtocolTCP},
							{Name: "healthz", ContainerPort: healthPort, Protocol: corev1.ProtocolTCP},
						},
						LivenessProbe:  probe("/healthz"),
						ReadinessProbe: probe("/readyz"),
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							RunAsNonRoot:             ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "tmp", MountPath: "/tmp"}},
					}},
					Volumes: []corev1.Volume{
						{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
		},
	}
}

// InstallComponents applies o's namespace and Components(o) with
// server-side apply (weir's CRDs must be there already: see Install) and,
// when wait is set, waits until the Deployment has rolled out and is
// Available. Applying the same options again changes nothing.
func InstallComponents(ctx context.Context, c client.Client, o Options, wait time.Duration) error {
	_, err := installComponents(ctx, c, o, wait)
	return err
}

func installComponents(ctx context.Context, c client.Client, o Options, wait time.Duration) ([]string, error) {
	objs, err := Components(o)
	if err != nil {
		return nil, err
	}
	if o.namespace() != Namespace {
		objs = append([]*unstructured.Unstructured{namespaceObject(o.namespace())}, objs...)
	}
	changed, err := applyTracked(ctx, c, objs)
	if err != nil {
		return changed, err
	}
	if o.LeastPrivilege {
		// An earlier install without --least-privilege bound weir to
		// cluster-admin: that binding goes, or the mode would be a label.
		admin := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: clusterReconciler(o.namespace())}}
		err := c.Delete(ctx, admin)
		switch {
		case err == nil:
			changed = append(changed, "ClusterRoleBinding "+admin.Name+" (deleted)")
		case !apierrors.IsNotFound(err):
			return changed, fmt.Errorf("removing the cluster-admin binding of an earlier install: %w", err)
		}
	}
	if wait <= 0 {
		return changed, nil
	}
	return changed, waitAvailable(ctx, c, o.namespace(), wait)
}

// waitAvailable waits until weir's Deployment has rolled out its current
// generation and is Available.
func waitAvailable(ctx context.Context, c client.Client, ns string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		d := &appsv1.Deployment{}
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: Name}, d)
		switch {
		case err != nil:
			last = err.Error()
		case d.Status.ObservedGeneration < d.Generation:
			last = "the rollout has not started"
		case d.Status.UpdatedReplicas < ptr.Deref(d.Spec.Replicas, 1) || d.Status.AvailableReplicas < ptr.Deref(d.Spec.Replicas, 1):
			last = fmt.Sprintf("%d of %d replicas updated, %d available", d.Status.UpdatedReplicas, ptr.Deref(d.Spec.Replicas, 1), d.Status.AvailableReplicas)
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Deployment %s/%s was not Available within %s: %s (see `kubectl -n %s describe deployment %s`)", ns, Name, timeout, last, ns, Name)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// UninstallComponents deletes what InstallComponents applied (the objects
// of Components for o's namespace) and waits until they and weir's pods
// are gone, so that nothing reconciles after it returns.
func UninstallComponents(ctx context.Context, c client.Client, o Options) error {
	// Every object an install may have made, whatever it left out.
	o.NoNetworkPolicy = false
	objs, err := Components(o)
	if err != nil {
		return err
	}
	// The Deployment first, so that weir stops before its rights go.
	for i := len(objs) - 1; i >= 0; i-- {
		if err := c.Delete(ctx, objs[i], client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s %s: %w", objs[i].GetKind(), objs[i].GetName(), err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		var left []string
		for _, obj := range objs {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(obj.GroupVersionKind())
			if err := c.Get(ctx, client.ObjectKeyFromObject(obj), got); err == nil {
				left = append(left, obj.GetKind()+" "+obj.GetName())
			} else if !apierrors.IsNotFound(err) {
				return fmt.Errorf("reading %s %s: %w", obj.GetKind(), obj.GetName(), err)
			}
		}
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(o.namespace()), client.MatchingLabels(selectorLabels)); err != nil {
			return fmt.Errorf("listing weir's pods: %w", err)
		}
		for _, p := range pods.Items {
			left = append(left, "Pod "+p.Name)
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still there after 2 minutes in %s: %s: %w", o.namespace(), strings.Join(left, ", "), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
