// Package check verifies that a cluster can run weir, and that weir runs
// in it as it should, as `flux check` does: the API server and its
// Kubernetes version, the CRDs and whether they are weir's current ones,
// the controller (in the cluster or outside it, from its leader lease), and
// the Secrets the objects name: the sops-age key of each Kustomization that
// decrypts, the deploy key of each ssh:// GitRepository.
package check

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/config/crd"
	"github.com/weirhq/weir/internal/install"
	weirversion "github.com/weirhq/weir/internal/version"
)

// MinKubernetes is the oldest Kubernetes weir supports: Flux 2.7's.
const MinKubernetes = "1.32.0"

// Result is one check: what was checked, whether it passed, and what was
// found.
type Result struct {
	// Section groups the results as `flux check` prints them:
	// "prerequisites", "controllers", "crds", "secrets".
	Section string
	// OK is false for a failed check.
	OK bool
	// Message says what was found, or what is wrong and what to do.
	Message string
}

// Options select the checks.
type Options struct {
	// Pre checks only what an installation needs: the API server and its
	// version.
	Pre bool
	// Namespace is weir's namespace; empty means flux-system.
	Namespace string
	// Outside names a weir found running outside the cluster without a
	// leader lease, such as "weir up (pid 4242)"; empty when none is.
	Outside string
}

// Run makes the checks and returns every result, failed ones included.
// It fails only when the API server cannot be reached at all.
func Run(ctx context.Context, c client.Client, d discovery.ServerVersionInterface, o Options) ([]Result, error) {
	ns := o.Namespace
	if ns == "" {
		ns = install.Namespace
	}
	var out []Result
	sv, err := d.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("reaching the API server: %w", err)
	}
	out = append(out, kubernetesVersion(sv.GitVersion))
	if o.Pre {
		return out, nil
	}
	out = append(out, controller(ctx, c, ns, o.Outside)...)
	out = append(out, crds(ctx, c)...)
	out = append(out, secrets(ctx, c)...)
	return out, nil
}

// Failed says whether any result failed.
func Failed(results []Result) bool {
	return slices.ContainsFunc(results, func(r Result) bool { return !r.OK })
}

func kubernetesVersion(gitVersion string) Result {
	v, err := version.ParseGeneric(gitVersion)
	if err != nil {
		return Result{"prerequisites", false, fmt.Sprintf("the API server's version %q cannot be read: %v", gitVersion, err)}
	}
	if v.LessThan(version.MustParseGeneric(MinKubernetes)) {
		return Result{"prerequisites", false, fmt.Sprintf("Kubernetes %s is older than %s, the oldest weir supports", gitVersion, MinKubernetes)}
	}
	return Result{"prerequisites", true, fmt.Sprintf("Kubernetes %s >=%s", strings.TrimPrefix(gitVersion, "v"), MinKubernetes)}
}

// controller finds weir running: its Deployment in the cluster, or a
// process outside it (weir up, weir local, weir controller) holding the
// leader lease.
func controller(ctx context.Context, c client.Client, ns, outside string) []Result {
	var out []Result
	dep := &appsv1.Deployment{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: install.Name}, dep)
	switch {
	case err == nil:
		image := ""
		if cs := dep.Spec.Template.Spec.Containers; len(cs) > 0 {
			image = cs[0].Image
		}
		want := int32(1)
		if dep.Spec.Replicas != nil {
			want = *dep.Spec.Replicas
		}
		if dep.Status.AvailableReplicas >= 1 && dep.Status.ObservedGeneration == dep.Generation {
			out = append(out, Result{"controllers", true, fmt.Sprintf("%s: deployment ready (%d/%d available), image %s", install.Name, dep.Status.AvailableReplicas, want, image)})
		} else {
			out = append(out, Result{"controllers", false, fmt.Sprintf("%s: deployment not ready (%d/%d available): kubectl -n %s describe deployment %s, weir logs", install.Name, dep.Status.AvailableReplicas, want, ns, install.Name)})
		}
	case !apierrors.IsNotFound(err):
		out = append(out, Result{"controllers", false, fmt.Sprintf("reading the %s Deployment: %v", install.Name, err)})
	}
	deployed := err == nil
	lease := &coordinationv1.Lease{}
	leaseErr := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, lease)
	if apierrors.IsNotFound(leaseErr) {
		// weir up and weir local keep their lease in default.
		leaseErr = c.Get(ctx, client.ObjectKey{Namespace: "default", Name: leaseName}, lease)
	}
	held := leaseErr == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" && lease.Spec.RenewTime != nil
	switch {
	case held && leaseAlive(lease):
		out = append(out, Result{"controllers", true, fmt.Sprintf("leader %s renewed its lease %s ago", *lease.Spec.HolderIdentity, time.Since(lease.Spec.RenewTime.Time).Round(time.Second))})
	case outside != "":
		out = append(out, Result{"controllers", true, "weir runs outside the cluster: " + outside})
	case held && !deployed:
		out = append(out, Result{"controllers", false, fmt.Sprintf("no weir runs: the last leader, %s, renewed its lease %s ago (weir install, or weir controller)", *lease.Spec.HolderIdentity, time.Since(lease.Spec.RenewTime.Time).Round(time.Second))})
	case !deployed:
		out = append(out, Result{"controllers", false, fmt.Sprintf("no weir runs: no %s Deployment in %s and no leader lease (weir install, or weir up / weir controller outside the cluster)", install.Name, ns)})
	}
	return out
}

// leaseName is the leader election lease of weir's manager.
const leaseName = "weir-leader-election"

// leaseAlive says whether a lease was renewed within twice its duration.
func leaseAlive(l *coordinationv1.Lease) bool {
	limit := 30 * time.Second
	if l.Spec.LeaseDurationSeconds != nil {
		limit = 2 * time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return time.Since(l.Spec.RenewTime.Time) <= limit
}

// crds checks that each CRD weir serves is installed, serves the versions
// weir's does, and carries weir's version.
func crds(ctx context.Context, c client.Client) []Result {
	want, err := crd.All()
	if err != nil {
		return []Result{{"crds", false, fmt.Sprintf("reading weir's own CRDs: %v", err)}}
	}
	current := weirversion.Version
	if current == "" {
		current = "dev"
	}
	var out []Result
	for _, w := range want {
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: w.Name}, got); err != nil {
			if apierrors.IsNotFound(err) {
				out = append(out, Result{"crds", false, w.Name + ": not installed (weir install --crds-only)"})
			} else {
				out = append(out, Result{"crds", false, fmt.Sprintf("%s: %v", w.Name, err)})
			}
			continue
		}
		var missing []string
		for _, v := range w.Spec.Versions {
			if v.Served && !slices.ContainsFunc(got.Spec.Versions, func(g apiextensionsv1.CustomResourceDefinitionVersion) bool {
				return g.Name == v.Name && g.Served
			}) {
				missing = append(missing, v.Name)
			}
		}
		storage := ""
		for _, v := range got.Spec.Versions {
			if v.Storage {
				storage = v.Name
			}
		}
		switch {
		case len(missing) > 0:
			out = append(out, Result{"crds", false, fmt.Sprintf("%s: does not serve %s, which weir uses: weir install to update it", w.Name, strings.Join(missing, ", "))})
		case got.Labels["app.kubernetes.io/version"] != current:
			out = append(out, Result{"crds", true, fmt.Sprintf("%s/%s (installed by %s, this is weir %s: weir install updates it)", w.Name, storage, labelOr(got.Labels["app.kubernetes.io/version"], "another installer"), current)})
		default:
			out = append(out, Result{"crds", true, w.Name + "/" + storage})
		}
	}
	return out
}

func labelOr(v, alt string) string {
	if v == "" {
		return alt
	}
	return v
}

// secrets checks the Secrets that Kustomizations and GitRepositories
// name: a decryption Secret holding an age key, and the identity and
// known_hosts of an ssh:// source.
func secrets(ctx context.Context, c client.Client) []Result {
	var out []Result
	ks := &kustomizev1.KustomizationList{}
	if err := c.List(ctx, ks); err != nil {
		return []Result{{"secrets", false, fmt.Sprintf("listing Kustomizations: %v", err)}}
	}
	users := map[client.ObjectKey][]string{}
	for _, k := range ks.Items {
		if d := k.Spec.Decryption; d != nil && d.SecretRef != nil {
			key := client.ObjectKey{Namespace: k.Namespace, Name: d.SecretRef.Name}
			users[key] = append(users[key], k.Name)
		}
	}
	keys := make([]client.ObjectKey, 0, len(users))
	for k := range users {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b client.ObjectKey) int { return strings.Compare(a.String(), b.String()) })
	for _, key := range keys {
		s := &corev1.Secret{}
		names := strings.Join(users[key], ", ")
		if err := c.Get(ctx, key, s); err != nil {
			out = append(out, Result{"secrets", false, fmt.Sprintf("%s: %v; Kustomizations %s cannot decrypt (create it with the age key: kubectl -n %s create secret generic %s --from-file=age.agekey=KEYFILE)", key, notFoundOr(err), names, key.Namespace, key.Name)})
			continue
		}
		found := 0
		for k, v := range s.Data {
			if strings.HasSuffix(k, ".agekey") && strings.Contains(string(v), "AGE-SECRET-KEY-") {
				found++
			}
		}
		if found == 0 {
			out = append(out, Result{"secrets", false, fmt.Sprintf("%s holds no age key (a key ending in .agekey with AGE-SECRET-KEY-…): Kustomizations %s cannot decrypt", key, names)})
			continue
		}
		out = append(out, Result{"secrets", true, fmt.Sprintf("%s: age key for Kustomizations %s", key, names)})
	}

	repos := &sourcev1.GitRepositoryList{}
	if err := c.List(ctx, repos); err != nil {
		return append(out, Result{"secrets", false, fmt.Sprintf("listing GitRepositories: %v", err)})
	}
	for _, r := range repos.Items {
		u, err := url.Parse(r.Spec.URL)
		if err != nil || u.Scheme != "ssh" {
			continue
		}
		id := "GitRepository " + r.Namespace + "/" + r.Name
		if r.Spec.SecretRef == nil {
			out = append(out, Result{"secrets", false, id + ": an ssh:// URL needs a deploy key: set spec.secretRef to a Secret with identity and known_hosts"})
			continue
		}
		s := &corev1.Secret{}
		key := client.ObjectKey{Namespace: r.Namespace, Name: r.Spec.SecretRef.Name}
		if err := c.Get(ctx, key, s); err != nil {
			out = append(out, Result{"secrets", false, fmt.Sprintf("%s: deploy key %s: %v", id, key, notFoundOr(err))})
			continue
		}
		var missing []string
		for _, k := range []string{"identity", "known_hosts"} {
			if len(s.Data[k]) == 0 {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			out = append(out, Result{"secrets", false, fmt.Sprintf("%s: deploy key %s lacks %s", id, key, strings.Join(missing, " and "))})
			continue
		}
		out = append(out, Result{"secrets", true, fmt.Sprintf("%s: deploy key %s", id, key)})
	}
	return out
}

func notFoundOr(err error) string {
	if apierrors.IsNotFound(err) {
		return "not found"
	}
	return err.Error()
}
