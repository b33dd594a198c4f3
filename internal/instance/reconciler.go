package instance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/lifecycle"
)

// ControllerName is the component name on the instance's events.
const ControllerName = "flux-operator"

// Condition reasons of a FluxInstance.
const (
	// ConflictReason: another FluxInstance already runs in the cluster.
	ConflictReason = "InstanceConflict"
	// BuildFailedReason: the declared objects could not be built.
	BuildFailedReason = "BuildFailed"
	// ApplyFailedReason: applying or pruning failed.
	ApplyFailedReason = "ReconciliationFailed"
	// WaitingReason: applied, waiting for the sync or weir to be ready.
	WaitingReason = "DependencyNotReady"
)

// Reconciler reconciles FluxInstance objects.
type Reconciler struct {
	client.Client
	// Recorder emits Kubernetes events.
	Recorder record.EventRecorder
	// InCluster, when not nil, says weir runs in the cluster as installed
	// with these options: the instance then shapes weir's own in-cluster
	// objects. The image and replicas that run are kept from the live
	// Deployment. Nil (weir up, weir controller with a kubeconfig): the
	// instance applies the sync only, and reports weir's process as its
	// components.
	InCluster *install.Options
	// ManageInstallation lets the instance apply weir's in-cluster objects
	// (with InCluster). Off when weir was installed with least privilege:
	// it may not write its own RBAC, and `weir install` shapes it.
	ManageInstallation bool
	// SyncOverride, when set, rewrites a copy of spec.sync before it is
	// applied: `weir up` points the sync at its own Git server, keeping
	// the instance's path, so that a repository's FluxInstance does not
	// turn the local cluster to the remote it names.
	SyncOverride func(*v1.Sync)
	// ServerVersion tells the API server's version for the FluxReport;
	// nil leaves it out.
	ServerVersion func() (string, error)

	fresh     lifecycle.Fresh
	apiReader client.Reader
}

// live reads from the API server rather than the cache, for kinds weir
// does not cache (Deployments, nodes, FluxReports): a cached read would
// start an informer on every object of the kind.
func (r *Reconciler) live() client.Reader {
	if r.apiReader != nil {
		return r.apiReader
	}
	return r.Client
}

// Options size the controller's work queue.
type Options = lifecycle.Options

// SetupWithManager registers the controller: it reconciles on spec and
// annotation changes, and when the sync's source or Kustomization changes
// state, so that the instance's Ready follows the sync's.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	r.fresh.Use(mgr)
	r.apiReader = mgr.GetAPIReader()
	owned := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		l := o.GetLabels()
		if l[NameLabel] == "" || l[NamespaceLabel] == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: l[NamespaceLabel], Name: l[NameLabel]}}}
	})
	labelled := builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[NameLabel] != ""
	}))
	return ctrl.NewControllerManagedBy(mgr).
		Named("fluxinstance").
		For(&v1.FluxInstance{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&kustomizev1.Kustomization{}, owned, labelled).
		Watches(&sourcev1.GitRepository{}, owned, labelled).
		Watches(&sourcev1.OCIRepository{}, owned, labelled).
		WithOptions(opts.Controller(time.Second)).
		Complete(r)
}

// Reconcile applies what one FluxInstance declares and records the result.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	obj := &v1.FluxInstance{}
	if err := r.fresh.Get(ctx, r.Client, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, obj)
	}
	if obj.Disabled() {
		log.Info("reconciliation is disabled by the annotation " + v1.ReconcileAnnotation + ": " + v1.DisabledValue)
		return ctrl.Result{}, nil
	}
	orig := obj.DeepCopy()
	if v, ok := meta.ReconcileAnnotationValue(obj.GetAnnotations()); ok {
		obj.Status.SetLastHandledReconcileRequest(v)
	}
	if other, err := r.runningInstance(ctx, obj); err != nil {
		return ctrl.Result{}, err
	} else if other != "" {
		msg := fmt.Sprintf("only one FluxInstance may run in a cluster and %s already does: delete this one (weir serves the instance named %q in the namespace weir runs in)", other, v1.InstanceName)
		conditions.MarkFalse(obj, meta.ReadyCondition, ConflictReason, "%s", msg)
		conditions.MarkStalled(obj, ConflictReason, "%s", msg)
		conditions.Delete(obj, meta.ReconcilingCondition)
		obj.Status.ObservedGeneration = obj.Generation
		if !conditions.IsFalse(orig, meta.ReadyCondition) || conditions.GetMessage(orig, meta.ReadyCondition) != msg {
			r.Recorder.Event(obj, corev1.EventTypeWarning, ConflictReason, msg)
		}
		return ctrl.Result{}, r.patchStatus(ctx, obj, orig)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, obj, v1.Finalizer); err != nil {
		return ctrl.Result{}, err
	}
	result, recErr := r.reconcile(ctx, obj)
	if err := r.patchStatus(ctx, obj, orig); err != nil {
		return ctrl.Result{}, errors.Join(recErr, err)
	}
	if err := r.writeReport(ctx, obj); err != nil {
		log.Error(err, "writing the FluxReport")
	}
	return result, recErr
}

// runningInstance names another FluxInstance that runs before obj: the
// oldest one wins, and a tie goes to the namespace weir runs in.
func (r *Reconciler) runningInstance(ctx context.Context, obj *v1.FluxInstance) (string, error) {
	list := &v1.FluxInstanceList{}
	if err := r.List(ctx, list); err != nil {
		return "", fmt.Errorf("listing FluxInstances: %w", err)
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.UID == obj.UID || !o.DeletionTimestamp.IsZero() {
			continue
		}
		if conditions.GetReason(o, meta.ReadyCondition) == ConflictReason {
			continue
		}
		if o.CreationTimestamp.Before(&obj.CreationTimestamp) ||
			(o.CreationTimestamp.Equal(&obj.CreationTimestamp) && o.Namespace+"/"+o.Name < obj.Namespace+"/"+obj.Name) {
			return fmt.Sprintf("FluxInstance %s/%s", o.Namespace, o.Name), nil
		}
	}
	return "", nil
}

// reconcile builds the declared objects, applies them, prunes what is no
// longer declared, and sets Ready from the sync and weir's Deployment.
func (r *Reconciler) reconcile(ctx context.Context, obj *v1.FluxInstance) (ctrl.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, obj.Timeout())
	defer cancel()
	if obj.Status.ObservedGeneration != obj.Generation {
		conditions.MarkReconciling(obj, meta.ProgressingReason, "reconciling new generation %d", obj.Generation)
	}
	var components []*unstructured.Unstructured
	manage := r.InCluster != nil && r.ManageInstallation
	if manage {
		o, err := r.liveOptions(ctx, obj)
		if err != nil {
			return r.fail(obj, ApplyFailedReason, err)
		}
		if components, err = install.Components(o); err != nil {
			return r.fail(obj, BuildFailedReason, err)
		}
	}
	objs, err := Desired(r.effective(obj), components)
	if err != nil {
		return r.stall(obj, BuildFailedReason, err)
	}
	revision, err := Revision(objs)
	if err != nil {
		return r.stall(obj, BuildFailedReason, err)
	}
	newRevision := revision != obj.Status.LastAppliedRevision
	obj.Status.LastAttemptedRevision = revision
	if newRevision {
		r.Recorder.Eventf(obj, corev1.EventTypeNormal, meta.ProgressingReason, "Installing revision %s", revision)
	}
	for _, o := range objs {
		if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return r.fail(obj, ApplyFailedReason, fmt.Errorf("applying %s %s: %w", o.GetKind(), describe(o), err))
		}
	}
	inv := InventoryOf(objs)
	before := obj.Status.Inventory
	prunable, installed, err := r.prunable(obj)
	if err != nil {
		return r.fail(obj, BuildFailedReason, err)
	}
	if manage {
		// What `weir install` made counts as applied before: an object
		// the instance leaves out (NetworkPolicies, the cluster-admin
		// binding of a multitenant cluster) goes.
		before = merge(before, installed)
	}
	if err := r.prune(ctx, before, inv, prunable); err != nil {
		// What was applied is listed with what could not be pruned, so
		// that the next attempt prunes it.
		obj.Status.Inventory = merge(obj.Status.Inventory, inv)
		return r.fail(obj, ApplyFailedReason, err)
	}
	obj.Status.Inventory = inv
	obj.Status.LastAppliedRevision = revision
	obj.Status.Components = r.componentImages(ctx, obj)
	obj.Status.ObservedGeneration = obj.Generation
	conditions.Delete(obj, meta.StalledCondition)

	requeue := obj.Interval()
	if waitMsg, failed := r.waitingFor(ctx, r.effective(obj)); waitMsg != "" && ptr.Deref(obj.Spec.Wait, true) {
		if failed {
			conditions.MarkFalse(obj, meta.ReadyCondition, WaitingReason, "%s", waitMsg)
			conditions.Delete(obj, meta.ReconcilingCondition)
		} else {
			conditions.MarkUnknown(obj, meta.ReadyCondition, meta.ProgressingReason, "%s", waitMsg)
			conditions.MarkReconciling(obj, meta.ProgressingReason, "%s", waitMsg)
		}
		// The sync's objects wake the instance when they change; weir's
		// Deployment is not watched (that would cache every Deployment).
		if r.InCluster != nil {
			requeue = 5 * time.Second
		}
	} else {
		msg := "Reconciliation finished"
		if u := Unsupported(obj); len(u) > 0 {
			msg += fmt.Sprintf("; weir has no %s and does not run them", strings.Join(u, ", "))
		}
		if !conditions.IsTrue(obj, meta.ReadyCondition) || newRevision {
			r.Recorder.Eventf(obj, corev1.EventTypeNormal, meta.ReconciliationSucceededReason, "%s, revision %s", msg, revision)
		}
		conditions.MarkTrue(obj, meta.ReadyCondition, meta.ReconciliationSucceededReason, "%s", msg)
		conditions.Delete(obj, meta.ReconcilingCondition)
	}
	return ctrl.Result{RequeueAfter: min(requeue, reportEvery)}, nil
}

// effective is the instance as it is applied: with SyncOverride applied to
// a copy of its sync.
func (r *Reconciler) effective(obj *v1.FluxInstance) *v1.FluxInstance {
	if r.SyncOverride == nil || obj.Spec.Sync == nil {
		return obj
	}
	c := obj.DeepCopy()
	r.SyncOverride(c.Spec.Sync)
	return c
}

// liveOptions are the in-cluster options the instance declares, with the
// image and replicas of weir's live Deployment, so that an instance never
// changes the version that runs or scales weir down.
func (r *Reconciler) liveOptions(ctx context.Context, obj *v1.FluxInstance) (install.Options, error) {
	base := *r.InCluster
	d := &appsv1.Deployment{}
	err := r.live().Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: install.Name}, d)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return base, fmt.Errorf("reading weir's Deployment: %w", err)
	default:
		if c := managerContainer(d); c != nil && c.Image != "" {
			base.Image = c.Image
		}
		if d.Spec.Replicas != nil {
			base.Replicas = *d.Spec.Replicas
		}
	}
	return ComponentOptions(obj, base), nil
}

func managerContainer(d *appsv1.Deployment) *corev1.Container {
	for i, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	return nil
}

// waitingFor says what the instance waits for: the sync's source or
// Kustomization not Ready for their current generation, or weir's
// Deployment not Available. failed is true when one of them failed
// rather than still working.
func (r *Reconciler) waitingFor(ctx context.Context, obj *v1.FluxInstance) (msg string, failed bool) {
	if s := obj.Spec.Sync; s != nil {
		name := SyncName(obj)
		key := client.ObjectKey{Namespace: obj.Namespace, Name: name}
		var src conditions.Getter
		switch s.Kind {
		case sourcev1.GitRepositoryKind:
			src = &sourcev1.GitRepository{}
		case sourcev1.OCIRepositoryKind:
			src = &sourcev1.OCIRepository{}
		}
		if src != nil {
			if m, f := notReady(ctx, r.Client, key, src.(client.Object), s.Kind); m != "" {
				return "sync: " + m, f
			}
		}
		if m, f := notReady(ctx, r.Client, key, &kustomizev1.Kustomization{}, kustomizev1.KustomizationKind); m != "" {
			return "sync: " + m, f
		}
	}
	if r.InCluster != nil {
		d := &appsv1.Deployment{}
		if err := r.live().Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: install.Name}, d); err != nil {
			return fmt.Sprintf("Deployment %s/%s: %v", obj.Namespace, install.Name, err), false
		}
		want := ptr.Deref(d.Spec.Replicas, 1)
		if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas < want || d.Status.AvailableReplicas < want {
			return fmt.Sprintf("Deployment %s/%s: %d of %d replicas updated, %d available", obj.Namespace, install.Name, d.Status.UpdatedReplicas, want, d.Status.AvailableReplicas), false
		}
	}
	return "", false
}

// notReady says why the Flux object at key is not Ready for its current
// generation, or "" when it is.
func notReady(ctx context.Context, c client.Reader, key client.ObjectKey, o client.Object, kind string) (string, bool) {
	if err := c.Get(ctx, key, o); err != nil {
		return fmt.Sprintf("%s %s: %v", kind, key, err), false
	}
	g := o.(conditions.Getter)
	ready := conditions.Get(g, meta.ReadyCondition)
	switch {
	case ready == nil:
		return fmt.Sprintf("%s %s is not reconciled yet", kind, key), false
	case ready.ObservedGeneration < o.GetGeneration():
		return fmt.Sprintf("%s %s is reconciling generation %d", kind, key, o.GetGeneration()), false
	case ready.Status == "True":
		return "", false
	case ready.Status == "False" && !waiting(ready.Reason):
		return fmt.Sprintf("%s %s is not Ready: %s", kind, key, ready.Message), true
	default:
		return fmt.Sprintf("%s %s is progressing: %s", kind, key, ready.Message), false
	}
}

// waiting tells whether a Ready=False reason means the object waits for
// another (its source's artifact, a dependency) rather than failed.
func waiting(reason string) bool {
	return reason == meta.ArtifactFailedReason || reason == meta.DependencyNotReadyReason || reason == meta.ProgressingReason
}

// componentImages are the components that run: weir's image (from its
// Deployment in the cluster, else weir's process) for each component
// weir has of those the instance lists.
func (r *Reconciler) componentImages(ctx context.Context, obj *v1.FluxInstance) []v1.ComponentImage {
	repo, tag, digest := "weir", versionTag(), ""
	if r.InCluster != nil {
		d := &appsv1.Deployment{}
		if err := r.live().Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: install.Name}, d); err == nil {
			if c := managerContainer(d); c != nil {
				repo, tag, digest = splitImage(c.Image)
			}
		}
	}
	var out []v1.ComponentImage
	for _, name := range Components(obj) {
		out = append(out, v1.ComponentImage{Name: name, Repository: repo, Tag: tag, Digest: digest})
	}
	return out
}

// splitImage splits repo:tag@digest.
func splitImage(image string) (repo, tag, digest string) {
	repo, digest, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

// prune deletes what old lists and current does not, except objects
// annotated fluxcd.controlplane.io/prune: disabled. A sync Kustomization
// is orphaned first: its workloads stay.
func (r *Reconciler) prune(ctx context.Context, old, current *v1.ResourceInventory, prunable func(string) bool) error {
	if old == nil {
		return nil
	}
	var errs []error
	for _, e := range old.Entries {
		if slices.ContainsFunc(current.Entries, func(c v1.ResourceRef) bool { return c.ID == e.ID }) || !prunable(e.ID) {
			continue
		}
		if err := r.deleteEntry(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// prunable tells which inventory entries the instance may delete: only
// what weir's instance applies, the sync's sources and Kustomization in
// its namespace and, when it manages the installation, weir's in-cluster
// objects (returned as installed). An inventory Flux Operator wrote lists
// Flux's CRDs and controllers too: taking such an instance over must never
// delete the CRDs, and with them every Flux object.
func (r *Reconciler) prunable(obj *v1.FluxInstance) (func(string) bool, *v1.ResourceInventory, error) {
	installed := &v1.ResourceInventory{}
	if r.InCluster != nil && r.ManageInstallation {
		all := *r.InCluster
		all.Namespace, all.LeastPrivilege, all.NoNetworkPolicy = obj.Namespace, false, false
		objs, err := install.Components(all)
		if err != nil {
			return nil, nil, err
		}
		installed = InventoryOf(objs)
	}
	return func(id string) bool {
		if slices.ContainsFunc(installed.Entries, func(e v1.ResourceRef) bool { return e.ID == id }) {
			return true
		}
		parts := strings.Split(id, "_")
		if len(parts) != 4 || parts[0] != obj.Namespace {
			return false
		}
		switch parts[2] + "/" + parts[3] {
		case "source.toolkit.fluxcd.io/GitRepository", "source.toolkit.fluxcd.io/OCIRepository",
			"source.toolkit.fluxcd.io/Bucket", "kustomize.toolkit.fluxcd.io/Kustomization":
			return true
		}
		return false
	}, installed, nil
}

// deleteEntry deletes one inventory entry, leaving its workloads alone.
func (r *Reconciler) deleteEntry(ctx context.Context, e v1.ResourceRef) error {
	u, err := parseEntry(e)
	if err != nil {
		return err
	}
	if err := r.live().Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
		if apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err) {
			return nil
		}
		return fmt.Errorf("reading %s %s to prune it: %w", u.GetKind(), describe(u), err)
	}
	if strings.EqualFold(u.GetAnnotations()[v1.PruneAnnotation], v1.DisabledValue) {
		return nil
	}
	if u.GetKind() == kustomizev1.KustomizationKind {
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"deletionPolicy":"Orphan"}}`))
		if err := r.Patch(ctx, u, patch); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("orphaning the workloads of Kustomization %s before deleting it: %w", describe(u), err)
		}
	}
	if err := r.Delete(ctx, u, client.PropagationPolicy("Background")); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s %s: %w", u.GetKind(), describe(u), err)
	}
	return nil
}

// finalize removes what the instance applied, unless its reconciliation is
// disabled: the sync's objects (their workloads stay) and, in the cluster,
// weir's own objects last. The CRDs and the namespace stay.
func (r *Reconciler) finalize(ctx context.Context, obj *v1.FluxInstance) error {
	if !controllerutil.ContainsFinalizer(obj, v1.Finalizer) {
		return nil
	}
	prunable, _, err := r.prunable(obj)
	if err != nil {
		return err
	}
	if !obj.Disabled() && obj.Status.Inventory != nil {
		entries := slices.DeleteFunc(slices.Clone(obj.Status.Inventory.Entries), func(e v1.ResourceRef) bool { return !prunable(e.ID) })
		// weir's own Deployment goes last: deleting it stops weir.
		slices.SortStableFunc(entries, func(a, b v1.ResourceRef) int {
			return boolRank(strings.HasSuffix(a.ID, "_apps_Deployment")) - boolRank(strings.HasSuffix(b.ID, "_apps_Deployment"))
		})
		var errs []error
		for _, e := range entries {
			if strings.HasSuffix(e.ID, "_apps_Deployment") {
				continue
			}
			if err := r.deleteEntry(ctx, e); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			r.Recorder.Event(obj, corev1.EventTypeWarning, "UninstallFailed", err.Error())
			return err
		}
	}
	patch := client.MergeFrom(obj.DeepCopy())
	controllerutil.RemoveFinalizer(obj, v1.Finalizer)
	if err := r.Patch(ctx, obj, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the finalizer: %w", err)
	}
	if !obj.Disabled() && obj.Status.Inventory != nil {
		for _, e := range obj.Status.Inventory.Entries {
			if strings.HasSuffix(e.ID, "_apps_Deployment") && prunable(e.ID) {
				if err := r.deleteEntry(ctx, e); err != nil {
					ctrl.LoggerFrom(ctx).Error(err, "deleting weir's Deployment")
				}
			}
		}
	}
	return nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// merge lists the entries of both inventories once.
func merge(a, b *v1.ResourceInventory) *v1.ResourceInventory {
	out := &v1.ResourceInventory{}
	seen := map[string]bool{}
	for _, inv := range []*v1.ResourceInventory{b, a} {
		if inv == nil {
			continue
		}
		for _, e := range inv.Entries {
			if !seen[e.ID] {
				seen[e.ID] = true
				out.Entries = append(out.Entries, e)
			}
		}
	}
	return out
}

// fail records a failure a retry may fix.
func (r *Reconciler) fail(obj *v1.FluxInstance, reason string, err error) (ctrl.Result, error) {
	conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", err.Error())
	conditions.MarkReconciling(obj, meta.ProgressingWithRetryReason, "%s", err.Error())
	r.Recorder.Event(obj, corev1.EventTypeWarning, reason, err.Error())
	return ctrl.Result{}, err
}

// stall records a failure only a spec change can fix.
func (r *Reconciler) stall(obj *v1.FluxInstance, reason string, err error) (ctrl.Result, error) {
	conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", err.Error())
	conditions.MarkStalled(obj, reason, "%s", err.Error())
	conditions.Delete(obj, meta.ReconcilingCondition)
	obj.Status.ObservedGeneration = obj.Generation
	r.Recorder.Event(obj, corev1.EventTypeWarning, reason, err.Error())
	return ctrl.Result{}, nil
}

func (r *Reconciler) patchStatus(ctx context.Context, obj, orig *v1.FluxInstance) error {
	if err := lifecycle.PatchStatus(ctx, r.Client, obj, orig); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// describe names an object as namespace/name, or name when cluster-scoped.
func describe(o client.Object) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}
