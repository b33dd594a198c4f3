package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	controlplanev1 "github.com/weirhq/weir/api/controlplane/v1"
)

// Object is a Flux object. Most kinds carry Flux's status conditions (see
// [Conditions]); Alerts and Providers of v1beta3 have no status at all.
type Object interface {
	client.Object
}

// Conditions returns obj's status conditions, none for a kind without them.
func Conditions(obj Object) []metav1.Condition {
	if g, ok := obj.(interface{ GetConditions() []metav1.Condition }); ok {
		return g.GetConditions()
	}
	return nil
}

// Kind describes one kind of Flux object and the names the command line
// gives it. Adding a kind to the table behind [Kinds] adds it to every verb.
type Kind struct {
	// Name is the API kind, such as "GitRepository".
	Name string
	// Group is the word the command line puts before the kind: "source"
	// for sources ("weir reconcile source git"), empty for the others.
	Group string
	// Use is the kind's name on the command line: "git" for GitRepository,
	// "kustomization" for Kustomization.
	Use string
	// Aliases are other command-line names of the kind, such as "ks".
	Aliases []string
	// SuspendAnnotation, when set, is the annotation that suspends the
	// kind (set to "disabled") instead of spec.suspend: a FluxInstance's
	// fluxcd.controlplane.io/reconcile.
	SuspendAnnotation string
	// Static kinds have no status and no controller reconciling them (the
	// v1beta3 Alert and Provider): a change to them takes effect at once,
	// so the verbs that request or wait for a reconcile leave them out.
	Static bool

	newObject func() Object
	newList   func() client.ObjectList
}

// kinds is the table of the kinds weir acts on.
var kinds = []Kind{
	{
		Name: sourcev1.GitRepositoryKind, Group: "source", Use: "git",
		newObject: func() Object { return &sourcev1.GitRepository{} },
		newList:   func() client.ObjectList { return &sourcev1.GitRepositoryList{} },
	},
	{
		Name: sourcev1.OCIRepositoryKind, Group: "source", Use: "oci",
		newObject: func() Object { return &sourcev1.OCIRepository{} },
		newList:   func() client.ObjectList { return &sourcev1.OCIRepositoryList{} },
	},
	{
		Name: sourcev1.BucketKind, Group: "source", Use: "bucket",
		newObject: func() Object { return &sourcev1.Bucket{} },
		newList:   func() client.ObjectList { return &sourcev1.BucketList{} },
	},
	{
		Name: sourcev1.HelmRepositoryKind, Group: "source", Use: "helm",
		newObject: func() Object { return &sourcev1.HelmRepository{} },
		newList:   func() client.ObjectList { return &sourcev1.HelmRepositoryList{} },
	},
	{
		Name: sourcev1.HelmChartKind, Group: "source", Use: "chart",
		newObject: func() Object { return &sourcev1.HelmChart{} },
		newList:   func() client.ObjectList { return &sourcev1.HelmChartList{} },
	},
	{
		Name: swapi.ArtifactGeneratorKind, Group: "artifact", Use: "generator", Aliases: []string{"generators", "ag"},
		SuspendAnnotation: swapi.ReconcileAnnotation,
		newObject:         func() Object { return &swapi.ArtifactGenerator{} },
		newList:           func() client.ObjectList { return &swapi.ArtifactGeneratorList{} },
	},
	{
		Name: kustomizev1.KustomizationKind, Use: "kustomization", Aliases: []string{"ks"},
		newObject: func() Object { return &kustomizev1.Kustomization{} },
		newList:   func() client.ObjectList { return &kustomizev1.KustomizationList{} },
	},
	{
		Name: helmv2.HelmReleaseKind, Use: "helmrelease", Aliases: []string{"hr"},
		newObject: func() Object { return &helmv2.HelmRelease{} },
		newList:   func() client.ObjectList { return &helmv2.HelmReleaseList{} },
	},
	{
		Name: notificationv1.ReceiverKind, Use: "receiver", Aliases: []string{"rcv"},
		newObject: func() Object { return &notificationv1.Receiver{} },
		newList:   func() client.ObjectList { return &notificationv1.ReceiverList{} },
	},
	{
		Name: notificationv1beta3.AlertKind, Use: "alert", Static: true,
		newObject: func() Object { return &notificationv1beta3.Alert{} },
		newList:   func() client.ObjectList { return &notificationv1beta3.AlertList{} },
	},
	{
		Name: notificationv1beta3.ProviderKind, Use: "alert-provider", Aliases: []string{"provider"}, Static: true,
		newObject: func() Object { return &notificationv1beta3.Provider{} },
		newList:   func() client.ObjectList { return &notificationv1beta3.ProviderList{} },
	},
	{
		Name: controlplanev1.FluxInstanceKind, Use: "instance", Aliases: []string{"fi", "fluxinstance"},
		SuspendAnnotation: controlplanev1.ReconcileAnnotation,
		newObject:         func() Object { return &controlplanev1.FluxInstance{} },
		newList:           func() client.ObjectList { return &controlplanev1.FluxInstanceList{} },
	},
}

// Kinds returns the kinds of Flux objects weir acts on, in the order the
// command line lists them.
func Kinds() []Kind { return slices.Clone(kinds) }

// LookupKind finds a kind by any of its names: the API kind in any case
// ("GitRepository", "gitrepository"), the command line's words ("source
// git", "kustomization") or an alias ("ks").
func LookupKind(name string) (Kind, bool) {
	want := strings.ToLower(strings.Join(strings.Fields(name), " "))
	for _, k := range kinds {
		names := []string{strings.ToLower(k.Name), k.Noun()}
		for _, a := range k.Aliases {
			names = append(names, strings.TrimSpace(k.Group+" "+a))
		}
		if k.Group == "" {
			names = append(names, k.Aliases...)
		}
		if slices.Contains(names, want) {
			return k, true
		}
	}
	return Kind{}, false
}

// Noun is how messages name the kind, as flux does: "source git",
// "kustomization".
func (k Kind) Noun() string { return strings.TrimSpace(k.Group + " " + k.Use) }

// New returns an empty object of the kind.
func (k Kind) New() Object { return k.newObject() }

// NewList returns an empty list of the kind, for a caller that lists or
// watches with options of its own.
func (k Kind) NewList() client.ObjectList { return k.newList() }

// Outcome says in the flux CLI's words what the last reconcile of obj
// achieved: "fetched revision main@sha1:…" for a source, "applied revision
// …" for the others. An object without a revision, such as a
// HelmRepository of type oci, is described by its Ready message.
func (k Kind) Outcome(obj Object) string {
	st := StatusOf(obj)
	rev := st.Revision
	if rev == "" && st.Message != "" {
		return st.Message
	}
	if k.Group == "source" {
		return "fetched revision " + rev
	}
	return "applied revision " + rev
}

// ErrSuspended is the cause of the errors returned for acting on a
// suspended object in a way that needs its controller.
var ErrSuspended = errors.New("resource is suspended")

// ReconcileError reports a reconcile that ended with the object not Ready.
type ReconcileError struct {
	// Kind is the API kind of the object.
	Kind string
	// Key is the namespace and name of the object.
	Key client.ObjectKey
	// Reason and Message are those of the object's Ready condition.
	Reason, Message string
}

// Error names the object and gives the Ready message.
func (e *ReconcileError) Error() string {
	return fmt.Sprintf("%s %s failed to reconcile: %s", e.Kind, e.Key, e.Message)
}

// notFoundError words a missing object for a user and still answers
// apierrors.IsNotFound.
type notFoundError struct {
	kind string
	key  client.ObjectKey
	err  error
}

func (e *notFoundError) Error() string { return fmt.Sprintf("%s %s not found", e.kind, e.key) }
func (e *notFoundError) Unwrap() error { return e.err }

// Get reads the object of kind k at key.
func Get(ctx context.Context, c client.Client, k Kind, key client.ObjectKey) (Object, error) {
	obj := k.New()
	if err := c.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &notFoundError{kind: k.Name, key: key, err: err}
		}
		return nil, fmt.Errorf("reading %s %s: %w", k.Name, key, err)
	}
	return obj, nil
}

// List reads the objects of kind k in namespace, or in every namespace when
// namespace is empty, sorted by namespace and name. opts narrow the list
// further, such as a label selector.
func List(ctx context.Context, c client.Reader, k Kind, namespace string, opts ...client.ListOption) ([]Object, error) {
	list := k.newList()
	where := "in any namespace"
	opts = slices.Clone(opts)
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
		where = "in namespace " + namespace
	}
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("listing %s objects %s: %w", k.Name, where, err)
	}
	items, err := apimeta.ExtractList(list)
	if err != nil {
		return nil, fmt.Errorf("reading the list of %s objects: %w", k.Name, err)
	}
	objs := make([]Object, 0, len(items))
	for _, item := range items {
		obj, ok := item.(Object)
		if !ok {
			return nil, fmt.Errorf("a %s list holds a %T, which is not an API object", k.Name, item)
		}
		objs = append(objs, obj)
	}
	slices.SortFunc(objs, func(a, b Object) int {
		if n := strings.Compare(a.GetNamespace(), b.GetNamespace()); n != 0 {
			return n
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
	return objs, nil
}

// RequestReconcile asks obj's controller to reconcile it now, as `flux
// reconcile` does: a merge patch that sets the reconcile.fluxcd.io/requestedAt
// annotation to the current time. It returns that time, which the
// controller copies to status.lastHandledReconcileAt once it has handled the
// request (see [WaitReconciled]). obj is the object as last read; a suspended
// one is refused with [ErrSuspended], since nothing would handle the request.
//
// Extra annotation keys, such as Flux's reconcile.fluxcd.io/forceAt and
// resetAt for HelmReleases, are set to the same token in the same patch,
// as `flux reconcile hr --force` does.
func RequestReconcile(ctx context.Context, c client.Client, obj Object, extra ...string) (requestedAt string, err error) {
	if StatusOf(obj).Suspended {
		return "", fmt.Errorf("cannot reconcile %s: %w; resume it first", describe(c, obj), ErrSuspended)
	}
	requestedAt = time.Now().Format(time.RFC3339Nano)
	patch := requestPatch(requestedAt)
	for _, key := range extra {
		patch["metadata"].(map[string]any)["annotations"].(map[string]string)[key] = requestedAt
	}
	if err := mergePatch(ctx, c, obj, patch); err != nil {
		return "", fmt.Errorf("requesting a reconcile of %s: %w", describe(c, obj), err)
	}
	return requestedAt, nil
}

// SetSuspend suspends or resumes obj with a merge patch of spec.suspend, as
// `flux suspend` and `flux resume` do. Resuming also requests a reconcile in
// the same patch, so that the object catches up at once; requestedAt is then
// the time to pass to [WaitReconciled], and empty when suspending or when
// the kind has no status (an Alert or a Provider: the change is read at once).
func SetSuspend(ctx context.Context, c client.Client, obj Object, suspend bool) (requestedAt string, err error) {
	patch := map[string]any{"spec": map[string]any{"suspend": suspend}}
	annotations := map[string]string{}
	if a := suspendAnnotation(obj); a != "" {
		patch = map[string]any{}
		annotations[a] = "enabled"
		if suspend {
			annotations[a] = "disabled"
		}
	}
	verb := "suspending"
	if !suspend {
		verb = "resuming"
		if hasStatus(obj) {
			requestedAt = time.Now().Format(time.RFC3339Nano)
			annotations[meta.ReconcileRequestAnnotation] = requestedAt
		}
	}
	if len(annotations) > 0 {
		patch["metadata"] = map[string]any{"annotations": annotations}
	}
	if err := mergePatch(ctx, c, obj, patch); err != nil {
		return "", fmt.Errorf("%s %s: %w", verb, describe(c, obj), err)
	}
	return requestedAt, nil
}

// hasStatus says whether obj's kind has a status its controller writes:
// only then can a reconcile be requested and waited for.
func hasStatus(obj Object) bool {
	_, ok := obj.(interface{ GetConditions() []metav1.Condition })
	return ok
}

// pollInterval is how often WaitReconciled reads the object: as often as
// the flux CLI does by default, cheap for one object.
const pollInterval = 250 * time.Millisecond

// WaitReconciled reads the object of kind k at key until its controller has
// handled the reconcile requested at requestedAt (status.lastHandledReconcileAt
// equals it; an empty requestedAt skips this check) and its Ready condition
// speaks of the current generation and is settled: True, or False, which is
// returned as a [*ReconcileError] carrying the Ready message. It returns the
// object as last read. It gives up when ctx ends, saying what it last saw,
// and at once when the object is suspended.
func WaitReconciled(ctx context.Context, c client.Client, key client.ObjectKey, k Kind, requestedAt string) (Object, error) {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var last Object
	for {
		obj, err := Get(ctx, c, k, key)
		if err != nil && ctx.Err() == nil {
			return last, err
		}
		if err == nil {
			last = obj
			if done, err := reconciled(obj, k, key, requestedAt); done || err != nil {
				return obj, err
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%s %s has not finished reconciling (%s): %w", k.Name, key, pending(last, requestedAt), ctx.Err())
		case <-ticker.C:
		}
	}
}

// reconciled says whether obj's controller has finished the reconcile
// requested at requestedAt, and returns its failure if it failed.
func reconciled(obj Object, k Kind, key client.ObjectKey, requestedAt string) (bool, error) {
	st := StatusOf(obj)
	if st.Suspended {
		return false, fmt.Errorf("%s %s will not reconcile: %w", k.Name, key, ErrSuspended)
	}
	if requestedAt != "" && st.LastHandledReconcileAt != requestedAt {
		return false, nil
	}
	ready := apimeta.FindStatusCondition(Conditions(obj), meta.ReadyCondition)
	if ready == nil || ready.Status == metav1.ConditionUnknown {
		return false, nil
	}
	// Like the flux CLI: the Ready condition's own observedGeneration where
	// the kind sets it, else the object's.
	observed := ready.ObservedGeneration
	if observed == 0 {
		observed = st.ObservedGeneration
	}
	if observed != obj.GetGeneration() {
		return false, nil
	}
	// A controller that will retry marks Reconciling with ProgressingWithRetry:
	// that failure is the outcome. Any other Reconciling=True is work under way.
	if r := apimeta.FindStatusCondition(Conditions(obj), meta.ReconcilingCondition); r != nil &&
		r.Status == metav1.ConditionTrue && r.Reason != meta.ProgressingWithRetryReason {
		return false, nil
	}
	if ready.Status == metav1.ConditionFalse {
		return true, &ReconcileError{Kind: k.Name, Key: key, Reason: ready.Reason, Message: ready.Message}
	}
	return true, nil
}

// pending says why a wait has not ended yet, for the timeout error.
func pending(obj Object, requestedAt string) string {
	if obj == nil {
		return "the object could not be read"
	}
	st := StatusOf(obj)
	if requestedAt != "" && st.LastHandledReconcileAt != requestedAt {
		return "the controller has not handled the request yet: is it running?"
	}
	return fmt.Sprintf("Ready is %s: %s", st.Ready, st.Message)
}

// Status is what a table or a dashboard shows of a Flux object.
type Status struct {
	// Ready is the status of the Ready condition: "True", "False" or
	// "Unknown" (also when the object has no Ready condition yet).
	Ready string
	// Reason and Message are those of the Ready condition.
	Reason, Message string
	// Revision is status.artifact.revision for a source and
	// status.lastAppliedRevision for the others, such as main@sha1:<hex>.
	Revision string
	// Suspended is spec.suspend.
	Suspended bool
	// ObservedGeneration is status.observedGeneration.
	ObservedGeneration int64
	// LastHandledReconcileAt is the last reconcile request the controller
	// handled (status.lastHandledReconcileAt).
	LastHandledReconcileAt string
}

// StatusOf reads obj's status. Every Flux kind spells these fields the same
// way, so one reader of the object's JSON form serves them all.
func StatusOf(obj Object) Status {
	st := Status{Ready: string(metav1.ConditionUnknown), Message: "waiting to be reconciled"}
	if ready := apimeta.FindStatusCondition(Conditions(obj), meta.ReadyCondition); ready != nil {
		st.Ready, st.Reason, st.Message = string(ready.Status), ready.Reason, ready.Message
	}
	// A typed API object always converts; should one not, the fields stay
	// empty rather than stop a listing.
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return st
	}
	st.Suspended, _, _ = unstructured.NestedBool(u, "spec", "suspend")
	if a := suspendAnnotation(obj); a != "" {
		st.Suspended = strings.EqualFold(obj.GetAnnotations()[a], "disabled")
	}
	st.ObservedGeneration, _, _ = unstructured.NestedInt64(u, "status", "observedGeneration")
	st.LastHandledReconcileAt, _, _ = unstructured.NestedString(u, "status", "lastHandledReconcileAt")
	st.Revision, _, _ = unstructured.NestedString(u, "status", "artifact", "revision")
	if st.Revision == "" {
		st.Revision, _, _ = unstructured.NestedString(u, "status", "lastAppliedRevision")
	}
	if st.Revision == "" {
		// A HelmRelease: the chart version, as flux get hr shows it.
		st.Revision, _, _ = unstructured.NestedString(u, "status", "lastAttemptedRevision")
	}
	return st
}

var hexRun = regexp.MustCompile(`\b[a-f0-9]{40,128}\b`)

// AbbreviateHashes shortens every hash (40 to 128 hex digits) in s to its
// first 8 digits, as the flux CLI does in its tables: main@sha1:0123abcd.
func AbbreviateHashes(s string) string {
	return hexRun.ReplaceAllStringFunc(s, func(h string) string { return h[:8] })
}

func requestPatch(requestedAt string) map[string]any {
	return map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{meta.ReconcileRequestAnnotation: requestedAt},
	}}
}

func mergePatch(ctx context.Context, c client.Client, obj Object, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, data))
}

// suspendAnnotation is the annotation that suspends obj's kind, if any.
func suspendAnnotation(obj Object) string {
	for _, k := range kinds {
		if k.SuspendAnnotation != "" && fmt.Sprintf("%T", k.newObject()) == fmt.Sprintf("%T", obj) {
			return k.SuspendAnnotation
		}
	}
	return ""
}

// describe names obj for a message: "GitRepository flux-system/podinfo".
func describe(c client.Client, obj Object) string {
	kind := fmt.Sprintf("%T", obj)
	if gvk, err := apiutil.GVKForObject(obj, c.Scheme()); err == nil {
		kind = gvk.Kind
	}
	return fmt.Sprintf("%s %s", kind, client.ObjectKeyFromObject(obj))
}
