package gitrepository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/metrics"
	"github.com/fluxcd/pkg/runtime/predicates"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/githubapp"

	"github.com/weirhq/weir/internal/lifecycle"
)

// ControllerName is the component name on events, as Flux's source-controller.
const ControllerName = "source-controller"

// defaultTimeout is Flux's default for spec.timeout.
const defaultTimeout = 60 * time.Second

// Reconciler reconciles GitRepository objects.
type Reconciler struct {
	client.Client
	// Store keeps the artifacts.
	Store *artifact.Store
	// Recorder emits Kubernetes events.
	Recorder record.EventRecorder
	// Metrics records Flux's gotk_* metrics; nil records nothing.
	Metrics *metrics.Recorder

	fresh lifecycle.Fresh
	// tokens caches GitHub App installation tokens (provider github).
	tokens githubapp.Tokens
}

// Options size the controller's work queue.
type Options = lifecycle.Options

// includeIndex indexes GitRepositories by the names they include.
const includeIndex = ".spec.include.repository.name"

// SetupWithManager registers the controller: it reconciles on spec changes
// and on reconcile requests, and re-builds an object when a source it
// includes gets a new artifact.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	r.fresh.Use(mgr)
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &sourcev1.GitRepository{}, includeIndex, func(o client.Object) []string {
		var names []string
		for _, inc := range o.(*sourcev1.GitRepository).Spec.Include {
			names = append(names, inc.GitRepositoryRef.Name)
		}
		return names
	})
	if err != nil {
		return fmt.Errorf("indexing includes: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("gitrepository").
		For(&sourcev1.GitRepository{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicates.ReconcileRequestedPredicate{}))).
		Watches(&sourcev1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(r.includers), builder.WithPredicates(includeChanged{})).
		WithOptions(opts.Controller(750 * time.Millisecond)).
		Complete(r)
}

// Reconcile brings one GitRepository's artifact up to date with its remote.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	obj := &sourcev1.GitRepository{}
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
	log.V(1).Info("reconciled", "revision", obj.Status.Artifact.Revision, "took", time.Since(start).String())
	return result, nil
}

// reconcile runs the steps in order and leaves the outcome in obj's status.
func (r *Reconciler) reconcile(ctx context.Context, obj *sourcev1.GitRepository) (ctrl.Result, error) {
	if obj.Status.ObservedGeneration != obj.Generation {
		r.markProgressing(ctx, obj, "reconciliation in progress")
	}
	// After markProgressing, which refreshes obj from the server: set
	// before, the request would be lost when a spec change and a request
	// come together, as `resume` sends them, and its wait would never end.
	if v, ok := meta.ReconcileAnnotationValue(obj.GetAnnotations()); ok {
		obj.Status.SetLastHandledReconcileRequest(v)
	}
	clearVerification(obj)
	cycle, err := r.includeCycle(ctx, obj)
	if err != nil {
		return r.fail(obj, sourcev1.IncludeUnavailableCondition, "NotFound", err)
	}
	if cycle != "" {
		return r.stall(obj, sourcev1.IncludeUnavailableCondition, includeCycleReason, fmt.Errorf("include cycle: %s", cycle))
	}
	timeout := defaultTimeout
	if obj.Spec.Timeout != nil {
		timeout = obj.Spec.Timeout.Duration
	}
	scratch, err := os.MkdirTemp("", "gitrepository-")
	if err != nil {
		return r.fail(obj, sourcev1.StorageOperationFailedCondition, sourcev1.DirCreationFailedReason, fmt.Errorf("creating a work folder: %w", err))
	}
	defer os.RemoveAll(scratch)

	rem, err := remoteFor(ctx, r.Client, obj, scratch, &r.tokens)
	if err != nil {
		return r.remoteFailed(obj, err)
	}
	fetchCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	tgt, err := resolve(fetchCtx, rem, obj.Spec.Reference)
	if err != nil {
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.GitOperationFailedReason, redact(err, obj.Spec.URL))
	}
	if f := checkVerifiable(obj, tgt); f != nil {
		return r.refuse(obj, f)
	}
	includes, err := r.includedArtifacts(ctx, obj)
	if err != nil {
		return r.fail(obj, sourcev1.IncludeUnavailableCondition, includeReason(err), err)
	}
	if r.upToDate(obj, tgt, includes) {
		r.markReady(obj)
		return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
	}

	dir := scratch + "/checkout"
	sparse := sparseFolders(obj.Spec.SparseCheckout)
	repo, commit, err := checkout(fetchCtx, rem, tgt, dir, tree{sparse: sparse, submodules: obj.Spec.RecurseSubmodules})
	if err != nil {
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.GitOperationFailedReason, redact(err, obj.Spec.URL))
	}
	if err := checkSparseFolders(dir, sparse); err != nil {
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.GitOperationFailedReason, err)
	}
	if obj.Spec.Verification != nil {
		// An artifact whose signatures do not verify is never stored.
		msg, f := verifySignatures(ctx, r.Client, obj, repo, tgt, commit)
		if f != nil {
			return r.refuse(obj, f)
		}
		markVerified(obj, msg)
	}
	tgt.hash = commit.Hash
	if err := r.copyIncludes(ctx, obj, includes, dir, scratch); err != nil {
		return r.fail(obj, sourcev1.StorageOperationFailedCondition, "CopyFailure", err)
	}
	art, err := r.store(ctx, obj, tgt.revision(), dir)
	if err != nil {
		return r.fail(obj, sourcev1.StorageOperationFailedCondition, sourcev1.ArchiveOperationFailedReason, err)
	}

	prev := obj.Status.Artifact
	obj.Status.Artifact = art
	obj.Status.IncludedArtifacts = includes
	obj.Status.ObservedIgnore = obj.Spec.Ignore
	obj.Status.ObservedInclude = obj.Spec.Include
	obj.Status.ObservedRecurseSubmodules = obj.Spec.RecurseSubmodules
	obj.Status.ObservedSparseCheckout = obj.Spec.SparseCheckout
	r.markReady(obj)
	if prev == nil || prev.Revision != art.Revision || prev.Digest != art.Digest {
		r.Recorder.AnnotatedEventf(obj, eventMetadata(art), corev1.EventTypeNormal, "NewArtifact",
			"stored artifact for commit '%s'", firstLine(commit.Message))
	}
	if _, err := r.Store.GC(storeRef(obj), art); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "garbage-collecting old artifacts")
	}
	return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
}

// remoteFailed records why the remote could not be set up: credentials
// that could not be built, a provider that does not fit its Secret, or a
// URL that cannot be used.
func (r *Reconciler) remoteFailed(obj *sourcev1.GitRepository, err error) (ctrl.Result, error) {
	var ae *authError
	var pe *providerError
	switch {
	case errors.As(err, &ae):
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.AuthenticationFailedReason, err)
	case errors.As(err, &pe) && pe.stall:
		return r.stall(obj, sourcev1.FetchFailedCondition, sourcev1.InvalidProviderConfigurationReason, err)
	case errors.As(err, &pe):
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.InvalidProviderConfigurationReason, err)
	}
	return r.stall(obj, sourcev1.FetchFailedCondition, sourcev1.URLInvalidReason, err)
}

// upToDate reports whether the stored artifact already holds this target,
// with the same ignore rules and includes, so nothing needs fetching.
func (r *Reconciler) upToDate(obj *sourcev1.GitRepository, tgt target, includes []*meta.Artifact) bool {
	a := obj.Status.Artifact
	if a == nil || tgt.hash.IsZero() || a.Revision != tgt.revision() || !r.Store.Has(a) {
		return false
	}
	if !reflect.DeepEqual(obj.Status.ObservedIgnore, obj.Spec.Ignore) || !reflect.DeepEqual(obj.Status.ObservedInclude, obj.Spec.Include) {
		return false
	}
	if requiresVerification(obj) {
		return false
	}
	if obj.Status.ObservedRecurseSubmodules != obj.Spec.RecurseSubmodules || !slices.Equal(obj.Status.ObservedSparseCheckout, obj.Spec.SparseCheckout) {
		return false
	}
	if len(includes) != len(obj.Status.IncludedArtifacts) {
		return false
	}
	for i, inc := range includes {
		if !inc.HasDigest(obj.Status.IncludedArtifacts[i].Digest) {
			return false
		}
	}
	return true
}

func (r *Reconciler) store(ctx context.Context, obj *sourcev1.GitRepository, revision, dir string) (*meta.Artifact, error) {
	ignore, err := artifact.NewIgnore(dir, obj.Spec.Ignore)
	if err != nil {
		return nil, fmt.Errorf("reading ignore rules: %w", err)
	}
	return r.Store.Archive(ctx, storeRef(obj), revision, dir, ignore)
}

// finalize removes the object's artifacts, then its finalizer.
func (r *Reconciler) finalize(ctx context.Context, obj *sourcev1.GitRepository) error {
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

func (r *Reconciler) recordMetrics(obj *sourcev1.GitRepository, start time.Time) {
	if r.Metrics == nil || !obj.DeletionTimestamp.IsZero() {
		return
	}
	ref := objectRef(obj)
	r.Metrics.RecordDuration(ref, start)
	r.Metrics.RecordSuspend(ref, obj.Spec.Suspend)
}

func objectRef(obj *sourcev1.GitRepository) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: sourcev1.GitRepositoryKind, APIVersion: sourcev1.GroupVersion.String(), Namespace: obj.Namespace, Name: obj.Name}
}

func storeRef(obj *sourcev1.GitRepository) artifact.Ref {
	return artifact.Ref{Kind: sourcev1.GitRepositoryKind, Namespace: obj.Namespace, Name: obj.Name}
}

// eventMetadata are the annotations source-controller puts on its events.
func eventMetadata(a *meta.Artifact) map[string]string {
	return map[string]string{
		sourcev1.GroupVersion.Group + "/revision": a.Revision,
		sourcev1.GroupVersion.Group + "/digest":   a.Digest,
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
