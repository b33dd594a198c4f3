package artifactgenerator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/lifecycle"
)

// ControllerName is the component name on events and the manager of the
// ExternalArtifacts, as Flux's source-watcher.
const ControllerName = "source-watcher"

// Reconciler reconciles ArtifactGenerator objects.
type Reconciler struct {
	client.Client
	// Store keeps the generated artifacts; the sources' artifacts are read
	// from it too.
	Store *artifact.Store
	// Recorder emits Kubernetes events.
	Recorder record.EventRecorder
	// NoCrossNamespaceRefs refuses sources in other namespaces.
	NoCrossNamespaceRefs bool

	fresh lifecycle.Fresh
}

// Reconcile brings one ArtifactGenerator's ExternalArtifacts up to date
// with its sources.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &swapi.ArtifactGenerator{}
	if err := r.fresh.Get(ctx, r.Client, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, obj)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, obj, swapi.Finalizer); err != nil {
		return ctrl.Result{}, err
	}
	if obj.IsDisabled() {
		ctrl.LoggerFrom(ctx).Info("reconciliation is disabled for this object")
		return ctrl.Result{}, nil
	}

	orig := obj.DeepCopy()
	result, recErr := r.reconcile(ctx, obj)
	if v, ok := meta.ReconcileAnnotationValue(obj.GetAnnotations()); ok {
		obj.SetLastHandledReconcileAt(v)
	}
	return lifecycle.Finish(ctx, r.Client, obj, orig, result, recErr, lifecycle.Retry{})
}

// reconcile runs the steps in order and leaves the outcome in obj's
// status: check the spec, read the sources' artifacts, stop there when
// nothing changed since the last run, else build every output and publish
// it, then delete the ExternalArtifacts no longer declared.
func (r *Reconciler) reconcile(ctx context.Context, obj *swapi.ArtifactGenerator) (ctrl.Result, error) {
	if reason, err := r.validate(obj); err != nil {
		return r.stall(obj, reason, err)
	}
	sources, err := r.observeSources(ctx, obj)
	if err != nil {
		return r.fail(obj, swapi.SourceFetchFailedReason, fmt.Errorf("get sources failed: %w", err))
	}
	sourcesDigest := swapi.HashObservedSources(observedSources(sources))
	if r.upToDate(ctx, obj, sourcesDigest) {
		return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
	}
	r.markProgressing(ctx, obj)

	work, err := os.MkdirTemp("", "artifactgenerator-")
	if err != nil {
		return r.fail(obj, meta.BuildFailedReason, fmt.Errorf("creating a work folder: %w", err))
	}
	defer os.RemoveAll(work)
	local, err := r.fetchSources(ctx, sources, filepath.Join(work, "sources"))
	if err != nil {
		return r.fail(obj, swapi.SourceFetchFailedReason, fmt.Errorf("fetch sources failed: %w", err))
	}
	outputs, err := expandOutputs(obj, local)
	if err != nil {
		return r.stall(obj, meta.BuildFailedReason, fmt.Errorf("failed to expand path pattern: %w", err))
	}

	refs := make([]swapi.ExternalArtifactReference, 0, len(outputs))
	var changed []string
	for i, out := range outputs {
		dir := filepath.Join(work, "artifacts", fmt.Sprint(i))
		if err := build(ctx, out.Copy, local, dir); err != nil {
			err = fmt.Errorf("%s build failed: failed to apply copy operations: %w", out.Name, err)
			var ce *copyError
			if errors.As(err, &ce) {
				return r.stall(obj, meta.BuildFailedReason, err)
			}
			return r.fail(obj, meta.BuildFailedReason, err)
		}
		p, err := r.publish(ctx, obj, out, dir, sources)
		if err != nil {
			return r.fail(obj, meta.ReconciliationFailedReason, fmt.Errorf("%s reconcile failed: %w", out.Name, err))
		}
		refs = append(refs, p.ref)
		if p.changed || !hasArtifact(obj.Status.Inventory, p.ref) {
			changed = append(changed, fmt.Sprintf("%s/%s (%s)", p.ref.Namespace, p.ref.Name, p.ref.Digest))
		}
	}
	if err := r.prune(ctx, obj, orphans(obj.Status.Inventory, refs)); err != nil {
		return r.fail(obj, meta.ReconciliationFailedReason, err)
	}

	obj.Status.Inventory = refs
	obj.Status.ObservedSourcesDigest = sourcesDigest
	r.markReady(obj, fmt.Sprintf("reconciliation succeeded, generated %d artifact(s)", len(refs)))
	if len(changed) > 0 {
		r.Recorder.Event(obj, corev1.EventTypeNormal, meta.ReadyCondition, "external artifacts reconciled: "+strings.Join(changed, "\n"))
	}
	return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
}

// upToDate reports whether the last run's outcome still stands: it
// succeeded for this generation and these source revisions, and every
// ExternalArtifact of the inventory is in the cluster and its artifact in
// the store, unchanged.
func (r *Reconciler) upToDate(ctx context.Context, obj *swapi.ArtifactGenerator, sourcesDigest string) bool {
	if !conditions.IsReady(obj) || conditions.GetObservedGeneration(obj, meta.ReadyCondition) != obj.Generation ||
		obj.Status.ObservedSourcesDigest != sourcesDigest {
		return false
	}
	if obj.Spec.PathPattern == "" && len(obj.Status.Inventory) != len(obj.Spec.OutputArtifacts) {
		return false
	}
	for _, ref := range obj.Status.Inventory {
		a := &meta.Artifact{Path: strings.ToLower(sourcev1.ExternalArtifactKind) + "/" + ref.Namespace + "/" + ref.Name + "/" + ref.Filename, Digest: ref.Digest}
		if !r.Store.Has(a) {
			return false
		}
	}
	eas, err := r.owned(ctx, obj)
	if err != nil || len(eas) != len(obj.Status.Inventory) {
		return false
	}
	for _, ea := range eas {
		if ea.Status.Artifact == nil || !hasArtifact(obj.Status.Inventory, swapi.ExternalArtifactReference{Name: ea.Name, Namespace: ea.Namespace, Digest: ea.Status.Artifact.Digest}) {
			return false
		}
	}
	return true
}

func hasArtifact(inventory []swapi.ExternalArtifactReference, ref swapi.ExternalArtifactReference) bool {
	for _, i := range inventory {
		if i.Name == ref.Name && i.Namespace == ref.Namespace && i.Digest == ref.Digest {
			return true
		}
	}
	return false
}

// validate checks what the schema cannot: unique aliases and artifact
// names, revision aliases that exist, and cross-namespace references when
// they are refused. It returns the reason to stall with.
func (r *Reconciler) validate(obj *swapi.ArtifactGenerator) (string, error) {
	aliases := map[string]bool{}
	for _, s := range obj.Spec.Sources {
		if aliases[s.Alias] {
			return swapi.ValidationFailedReason, fmt.Errorf("duplicate source alias '%s' found", s.Alias)
		}
		aliases[s.Alias] = true
		if r.NoCrossNamespaceRefs && s.Namespace != "" && s.Namespace != obj.Namespace {
			return swapi.AccessDeniedReason, fmt.Errorf("cross-namespace reference to source %s/%s/%s is not allowed", s.Kind, s.Namespace, s.Name)
		}
	}
	names := map[string]bool{}
	for _, a := range obj.Spec.OutputArtifacts {
		if names[a.Name] {
			return swapi.ValidationFailedReason, fmt.Errorf("duplicate artifact name '%s' found", a.Name)
		}
		names[a.Name] = true
		for _, field := range []struct{ name, value string }{{"revision", a.Revision}, {"originRevision", a.OriginRevision}} {
			if alias := strings.TrimPrefix(field.value, "@"); field.value != "" && !aliases[alias] {
				return swapi.ValidationFailedReason, fmt.Errorf("artifact %s %s source alias '%s' not found", a.Name, field.name, alias)
			}
		}
	}
	return "", nil
}

// finalize deletes the generated ExternalArtifacts and their artifacts,
// then the finalizer.
func (r *Reconciler) finalize(ctx context.Context, obj *swapi.ArtifactGenerator) error {
	refs := append([]swapi.ExternalArtifactReference(nil), obj.Status.Inventory...)
	eas, err := r.owned(ctx, obj)
	if err != nil {
		return err
	}
	for _, ea := range eas {
		if !hasName(refs, ea.Namespace, ea.Name) {
			refs = append(refs, swapi.ExternalArtifactReference{Name: ea.Name, Namespace: ea.Namespace})
		}
	}
	if err := r.prune(ctx, obj, refs); err != nil {
		return err
	}
	return lifecycle.RemoveFinalizer(ctx, r.Client, obj, swapi.Finalizer)
}

func hasName(refs []swapi.ExternalArtifactReference, namespace, name string) bool {
	for _, r := range refs {
		if r.Namespace == namespace && r.Name == name {
			return true
		}
	}
	return false
}
