package instance

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	runtimeconv "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/version"
)

// reportEvery bounds how stale the FluxReport's counts get.
const reportEvery = 5 * time.Minute

// ReportName is the name of the FluxReport weir keeps next to the instance.
const ReportName = "flux"

// versionTag is weir's version as an image tag would carry it.
func versionTag() string {
	if version.Version == "" {
		return "dev"
	}
	return version.Version
}

// counted are the kinds a report counts, each with how to read whether an
// object is suspended. They are the kinds weir's controllers cache.
var counted = []struct {
	apiVersion, kind string
	list             func() client.ObjectList
	suspended        func(client.Object) bool
}{
	{sourcev1.GroupVersion.String(), sourcev1.GitRepositoryKind, func() client.ObjectList { return &sourcev1.GitRepositoryList{} },
		func(o client.Object) bool { return o.(*sourcev1.GitRepository).Spec.Suspend }},
	{sourcev1.GroupVersion.String(), sourcev1.OCIRepositoryKind, func() client.ObjectList { return &sourcev1.OCIRepositoryList{} },
		func(o client.Object) bool { return o.(*sourcev1.OCIRepository).Spec.Suspend }},
	{sourcev1.GroupVersion.String(), sourcev1.HelmRepositoryKind, func() client.ObjectList { return &sourcev1.HelmRepositoryList{} },
		func(o client.Object) bool { return o.(*sourcev1.HelmRepository).Spec.Suspend }},
	{sourcev1.GroupVersion.String(), sourcev1.HelmChartKind, func() client.ObjectList { return &sourcev1.HelmChartList{} },
		func(o client.Object) bool { return o.(*sourcev1.HelmChart).Spec.Suspend }},
	{kustomizev1.GroupVersion.String(), kustomizev1.KustomizationKind, func() client.ObjectList { return &kustomizev1.KustomizationList{} },
		func(o client.Object) bool { return o.(*kustomizev1.Kustomization).Spec.Suspend }},
	{helmv2.GroupVersion.String(), helmv2.HelmReleaseKind, func() client.ObjectList { return &helmv2.HelmReleaseList{} },
		func(o client.Object) bool { return o.(*helmv2.HelmRelease).Spec.Suspend }},
}

// Report builds the FluxReport of an instance: what runs, the cluster, the
// counts of each kind, and the sync.
func (r *Reconciler) Report(ctx context.Context, obj *v1.FluxInstance) (*v1.FluxReport, error) {
	rep := &v1.FluxReport{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: v1.FluxReportKind},
		ObjectMeta: metav1.ObjectMeta{Name: ReportName, Namespace: obj.Namespace},
	}
	rep.Spec.Distribution = v1.FluxDistributionStatus{
		Entitlement: "weir (open source)",
		Status:      "Installed",
		Version:     versionTag(),
		ManagedBy:   "weir",
	}
	rep.Spec.Operator = &v1.OperatorInfo{APIVersion: v1.GroupVersion.String(), Version: versionTag(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if ci, err := r.clusterInfo(ctx); err == nil {
		rep.Spec.Cluster = ci
	}
	rep.Spec.ComponentsStatus = r.componentsStatus(ctx, obj)
	for _, k := range counted {
		list := k.list()
		if err := r.List(ctx, list); err != nil {
			return nil, fmt.Errorf("counting %s objects: %w", k.kind, err)
		}
		items, err := apimeta.ExtractList(list)
		if err != nil {
			return nil, fmt.Errorf("counting %s objects: %w", k.kind, err)
		}
		var stats v1.FluxReconcilerStats
		for _, it := range items {
			o := it.(client.Object)
			switch {
			case k.suspended(o):
				stats.Suspended++
			case conditions.IsTrue(o.(conditions.Getter), meta.ReadyCondition):
				stats.Running++
			default:
				stats.Failing++
			}
		}
		rep.Spec.ReconcilersStatus = append(rep.Spec.ReconcilersStatus, v1.FluxReconcilerStatus{APIVersion: k.apiVersion, Kind: k.kind, Stats: stats})
	}
	if s := obj.Spec.Sync; s != nil {
		name := SyncName(obj)
		sync := &v1.FluxSyncStatus{ID: "kustomization/" + obj.Namespace + "/" + name, Path: s.Path, Source: s.URL}
		ks := &kustomizev1.Kustomization{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: name}, ks); err != nil {
			sync.Status = err.Error()
		} else {
			sync.Ready = conditions.IsTrue(ks, meta.ReadyCondition)
			sync.Status = conditions.GetMessage(ks, meta.ReadyCondition)
			if sync.Status == "" {
				sync.Status = "not reconciled yet"
			}
		}
		rep.Spec.SyncStatus = sync
	}
	return rep, nil
}

// clusterInfo reads the API server's version and the nodes' platform.
func (r *Reconciler) clusterInfo(ctx context.Context) (*v1.ClusterInfo, error) {
	ci := &v1.ClusterInfo{}
	if r.ServerVersion != nil {
		v, err := r.ServerVersion()
		if err != nil {
			return nil, err
		}
		ci.ServerVersion = v
	}
	nodes := &corev1.NodeList{}
	if err := r.live().List(ctx, nodes); err != nil {
		return ci, nil
	}
	ci.Nodes = len(nodes.Items)
	platforms := map[string]bool{}
	var names []string
	for _, n := range nodes.Items {
		p := n.Status.NodeInfo.OperatingSystem + "/" + n.Status.NodeInfo.Architecture
		if !platforms[p] && p != "/" {
			platforms[p] = true
			names = append(names, p)
		}
	}
	ci.Platform = strings.Join(names, ",")
	return ci, nil
}

// componentsStatus says whether each component runs: weir's Deployment in
// the cluster, else weir's own process.
func (r *Reconciler) componentsStatus(ctx context.Context, obj *v1.FluxInstance) []v1.FluxComponentStatus {
	ready, status, image := true, fmt.Sprintf("running in weir's process (pid %d)", os.Getpid()), "weir:"+versionTag()
	if r.InCluster != nil {
		d := &appsv1.Deployment{}
		if err := r.live().Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: install.Name}, d); err != nil {
			ready, status = false, err.Error()
		} else {
			if c := managerContainer(d); c != nil {
				image = c.Image
			}
			want := ptr.Deref(d.Spec.Replicas, 1)
			ready = d.Status.AvailableReplicas >= want && d.Status.ObservedGeneration >= d.Generation
			status = fmt.Sprintf("Deployment %s/%s: %d of %d replicas available", obj.Namespace, install.Name, d.Status.AvailableReplicas, want)
		}
	}
	var out []v1.FluxComponentStatus
	for _, name := range Components(obj) {
		out = append(out, v1.FluxComponentStatus{Name: name, Ready: ready, Status: status, Image: image})
	}
	return out
}

// writeReport applies the instance's FluxReport and marks it Ready.
func (r *Reconciler) writeReport(ctx context.Context, obj *v1.FluxInstance) error {
	rep, err := r.Report(ctx, r.effective(obj))
	if err != nil {
		return err
	}
	m, err := runtimeconv.DefaultUnstructuredConverter.ToUnstructured(rep)
	if err != nil {
		return fmt.Errorf("converting the FluxReport: %w", err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	u.SetLabels(map[string]string{NameLabel: obj.Name, NamespaceLabel: obj.Namespace})
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying the FluxReport: %w", err)
	}
	live := &v1.FluxReport{}
	if err := r.live().Get(ctx, client.ObjectKeyFromObject(rep), live); err != nil {
		return fmt.Errorf("reading the FluxReport back: %w", err)
	}
	orig := live.DeepCopy()
	conditions.MarkTrue(live, meta.ReadyCondition, meta.SucceededReason, "Reporting finished in namespace %s", obj.Namespace)
	if err := r.Status().Patch(ctx, live, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("writing the FluxReport's status: %w", err)
	}
	return nil
}
