package helmchart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/fluxcd/pkg/runtime/metrics"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/cosign"
	"github.com/weirhq/weir/internal/lifecycle"
)

// ControllerName is the component name on events, as Flux's source-controller.
const ControllerName = "source-controller"

// Reconciler reconciles HelmChart objects.
type Reconciler struct {
	client.Client
	// Store keeps the artifacts; the sources' artifacts are read from it.
	Store *artifact.Store
	// Recorder emits Kubernetes events.
	Recorder record.EventRecorder
	// Metrics records Flux's gotk_* metrics; nil records nothing.
	Metrics *metrics.Recorder
	// SigstoreRoots gives the trusted root of keyless verification;
	// nil uses the public-good instance.
	SigstoreRoots *cosign.Roots

	indexes indexCache

	fresh lifecycle.Fresh
}

// Reconcile brings one HelmChart's artifact up to date with its source.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	obj := &sourcev1.HelmChart{}
	if err := r.fresh.Get(ctx, r.Client, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	start := time.Now()
	defer r.recordMetrics(obj, start)

	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, obj)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, obj, sourcev1.SourceFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	if obj.Spec.Suspend {
		log.Info("reconciliation is suspended for this object")
		return ctrl.Result{}, nil
	}

	orig := obj.DeepCopy()
	result, recErr := r.reconcile(ctx, obj)
	obj.Status.ObservedGeneration = obj.Generation
	// The shared last step: the status written, then a stalled failure
	// left until the spec (or, for a chart, its source) changes, another
	// failure returned for the queue's back-off.
	if result, err := lifecycle.Finish(ctx, r.Client, obj, orig, result, recErr, lifecycle.Retry{}); recErr != nil || err != nil {
		return result, err
	}
	log.V(1).Info("reconciled", "revision", revisionOf(obj), "took", time.Since(start).String())
	return result, nil
}

// reconcile runs the steps in order and leaves the outcome in obj's
// status: find the source, build the chart from it (or find the stored one
// current), store it.
func (r *Reconciler) reconcile(ctx context.Context, obj *sourcev1.HelmChart) (ctrl.Result, error) {
	wasReady := conditions.IsReady(obj)
	if obj.Status.ObservedGeneration != obj.Generation {
		r.markProgressing(ctx, obj)
	}
	// After markProgressing, which refreshes obj from the server: set
	// before, the request would be lost when a spec change and a request
	// come together, as `resume` sends them.
	if v, ok := meta.ReconcileAnnotationValue(obj.GetAnnotations()); ok {
		obj.Status.SetLastHandledReconcileRequest(v)
	}
	if obj.Spec.Verify == nil {
		conditions.Delete(obj, sourcev1.SourceVerifiedCondition)
	}
	src, err := r.fetchSource(ctx, obj)
	if err != nil {
		return r.sourceFailed(obj, err)
	}
	if src.current {
		// Same source revision and spec as the last good build.
		return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
	}

	b, err := r.buildChart(ctx, obj, src)
	if err != nil {
		return r.buildFailed(obj, err)
	}
	return r.storeChart(ctx, obj, b, wasReady)
}

// storeChart stores a new package, records the build in the status and
// announces a new artifact (or a recovery) with source-controller's event.
func (r *Reconciler) storeChart(ctx context.Context, obj *sourcev1.HelmChart, b *build, wasReady bool) (ctrl.Result, error) {
	prev := obj.Status.Artifact
	if b.tgz != nil {
		art, err := r.Store.Copy(ctx, storeRef(obj), b.version, bytes.NewReader(b.tgz))
		if err != nil {
			return r.fail(obj, sourcev1.StorageOperationFailedCondition, sourcev1.ArchiveOperationFailedReason,
				fmt.Errorf("unable to copy Helm chart to storage: %w", err))
		}
		obj.Status.Artifact = art
		obj.Status.URL = art.URL
		obj.Status.ObservedChartName = b.name
		obj.Status.ObservedValuesFiles = nil
		if obj.Spec.IgnoreMissingValuesFiles {
			obj.Status.ObservedValuesFiles = b.valuesFiles
		}
		if _, err := r.Store.GC(storeRef(obj), art); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "garbage-collecting old artifacts")
		}
	}
	r.markReady(obj, b)
	art := obj.Status.Artifact
	if prev == nil || prev.Digest != art.Digest || !wasReady {
		r.Recorder.AnnotatedEventf(obj, eventMetadata(art), corev1.EventTypeNormal, b.reason(), "%s", b.summary())
	}
	return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
}

// sourceFailed records a failure to find or read the source.
func (r *Reconciler) sourceFailed(obj *sourcev1.HelmChart, err error) (ctrl.Result, error) {
	var se *sourceError
	if !errors.As(err, &se) {
		return r.fail(obj, sourcev1.FetchFailedCondition, "SourceUnavailable", err)
	}
	switch {
	case se.stall:
		return r.stall(obj, sourcev1.FetchFailedCondition, se.reason, err)
	case se.waiting:
		// The source has no artifact yet: its watch brings the object
		// back when it does, so no Warning and no back-off.
		r.markFailed(obj, sourcev1.FetchFailedCondition, se.reason, err, false)
		conditions.MarkReconciling(obj, meta.ProgressingWithRetryReason, "%s", err.Error())
		return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
	}
	return r.fail(obj, sourcev1.FetchFailedCondition, se.reason, err)
}

// buildFailed records a failed build with source-controller's condition
// and reason: stalled when only a change can fix it.
func (r *Reconciler) buildFailed(obj *sourcev1.HelmChart, err error) (ctrl.Result, error) {
	if errors.Is(err, errAuth) {
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.AuthenticationFailedReason,
			fmt.Errorf("failed to authenticate with the Helm repository: %w", err))
	}
	var be *buildError
	if !errors.As(err, &be) {
		be = &buildError{reason: buildReason{"Unknown", "unknown build error"}, err: err}
	}
	if be.persistent() {
		return r.stall(obj, be.condition(), be.reason.reason, be)
	}
	return r.fail(obj, be.condition(), be.reason.reason, be)
}

// finalize removes the object's artifacts, then its finalizer.
func (r *Reconciler) finalize(ctx context.Context, obj *sourcev1.HelmChart) error {
	if err := r.Store.Remove(storeRef(obj)); err != nil {
		return fmt.Errorf("removing the artifacts of %s/%s: %w", obj.Namespace, obj.Name, err)
	}
	if r.Metrics != nil {
		ref := objectRef(obj)
		r.Metrics.DeleteDuration(ref)
		r.Metrics.DeleteSuspend(ref)
	}
	return lifecycle.RemoveFinalizer(ctx, r.Client, obj, sourcev1.SourceFinalizer)
}

func (r *Reconciler) recordMetrics(obj *sourcev1.HelmChart, start time.Time) {
	if r.Metrics == nil || !obj.DeletionTimestamp.IsZero() {
		return
	}
	ref := objectRef(obj)
	r.Metrics.RecordDuration(ref, start)
	r.Metrics.RecordSuspend(ref, obj.Spec.Suspend)
}

func revisionOf(obj *sourcev1.HelmChart) string {
	if obj.Status.Artifact == nil {
		return ""
	}
	return obj.Status.Artifact.Revision
}

func objectRef(obj *sourcev1.HelmChart) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: sourcev1.HelmChartKind, APIVersion: sourcev1.GroupVersion.String(), Namespace: obj.Namespace, Name: obj.Name}
}

func storeRef(obj *sourcev1.HelmChart) artifact.Ref {
	return artifact.Ref{Kind: sourcev1.HelmChartKind, Namespace: obj.Namespace, Name: obj.Name}
}

// eventMetadata are the annotations source-controller puts on its events.
func eventMetadata(a *meta.Artifact) map[string]string {
	return map[string]string{
		sourcev1.GroupVersion.Group + "/revision": a.Revision,
		sourcev1.GroupVersion.Group + "/digest":   a.Digest,
	}
}
