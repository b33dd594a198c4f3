package helm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/fluxcd/pkg/runtime/metrics"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/dependency"
	"github.com/weirhq/weir/internal/depgraph"
	"github.com/weirhq/weir/internal/kubeconfig"
	"github.com/weirhq/weir/internal/lifecycle"
	"github.com/weirhq/weir/internal/redact"
)

// ControllerName is the component name on events and the field manager,
// as Flux's.
const ControllerName = "helm-controller"

// Reconciler reconciles HelmRelease objects.
type Reconciler struct {
	client.Client
	// Store holds the source artifacts the charts are read from.
	Store *artifact.Store
	// Graph is the dependsOn index shared with Kustomizations.
	Graph *depgraph.Graph
	// Recorder emits Kubernetes events.
	Recorder record.EventRecorder
	// Metrics records Flux's gotk_* metrics; nil records nothing.
	Metrics *metrics.Recorder
	// NoCrossNamespaceRefs refuses chart sources and dependencies in other
	// namespaces.
	NoCrossNamespaceRefs bool
	// DefaultServiceAccount is impersonated for HelmReleases that name
	// none; empty means the controller's own identity.
	DefaultServiceAccount string
	// DisableChartDigestTracking is helm-controller's feature gate of that
	// name: the version of a chart from an OCIRepository is left as the
	// chart says, without "+<digest>", so that a tag pushed again with
	// other content does not upgrade the release.
	DisableChartDigestTracking bool

	config    *rest.Config
	fresh     lifecycle.Fresh
	secrets   redact.Registry
	mu        sync.Mutex
	discovery map[string]*sharedDiscovery
	// remotes are the connections to the clusters of spec.kubeConfig.
	remotes kubeconfig.Cache[*connection]
}

// stepError is a failed step, with Flux's reason. stalled marks what only
// a spec change can fix; wait marks what another object's change will
// end (it queues this one), so no retry is scheduled.
type stepError struct {
	reason  string
	err     error
	stalled bool
	wait    bool
}

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// Stalled implements lifecycle.Staller.
func (e *stepError) Stalled() bool { return e.stalled }

// Waiting implements lifecycle.Waiter: a dependency or source wait is
// woken by an event, not retried.
func (e *stepError) Waiting() (waiting, retry bool) { return e.wait, false }

// Reconcile brings one HelmRelease's release in line with its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	hr := &helmv2.HelmRelease{}
	if err := r.fresh.Get(ctx, r.Client, req.NamespacedName, hr); err != nil {
		if apierrors.IsNotFound(err) {
			r.Graph.Remove(graphKey(req.Namespace, req.Name))
			r.remotes.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	start := time.Now()
	defer r.recordMetrics(hr, start)
	if !hr.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, hr)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, hr, helmv2.HelmReleaseFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	deps := dependency.Keys(ctx, r.Client, helmv2.HelmReleaseKind, hr.Namespace, hr.Spec.DependsOn)
	r.Graph.Set(graphKey(hr.Namespace, hr.Name), deps)
	if hr.Spec.Suspend {
		return ctrl.Result{}, nil
	}

	// Values from Secrets are masked in every message of this reconcile:
	// the events (through the recorder), the conditions and the error
	// (which controller-runtime logs).
	secrets := r.secrets.Start(req.NamespacedName)
	defer r.secrets.Done(req.NamespacedName)
	orig := hr.DeepCopy()
	result, recErr := r.reconcile(ctx, hr, deps, secrets)
	secrets.MaskConditions(hr.Status.Conditions)
	recErr = secrets.Error(recErr)
	hr.Status.ObservedGeneration = hr.Generation
	var retry lifecycle.Retry
	if active := hr.GetActiveRetry(false); active != nil && active.GetRetryInterval() > 0 {
		retry.OnFailure = active.GetRetryInterval()
	}
	return lifecycle.Finish(ctx, r.Client, hr, orig, result, recErr, retry)
}

// reconcile runs the steps in order; a failure before the Helm action
// leaves the release as it was.
func (r *Reconciler) reconcile(ctx context.Context, hr *helmv2.HelmRelease, deps []depgraph.Key, secrets *redact.Secrets) (ctrl.Result, error) {
	// Force and reset requests are read before the reconcile request is
	// marked handled: each is honoured once, with the reconcile request
	// that carries it.
	reset := helmv2.ShouldHandleResetRequest(hr)
	force := helmv2.ShouldHandleForceRequest(hr)
	if v, ok := meta.ReconcileAnnotationValue(hr.GetAnnotations()); ok {
		hr.Status.SetLastHandledReconcileRequest(v)
	}
	if reset || hr.Status.LastAttemptedGeneration != hr.Generation {
		// A new spec or a reset request gives the remediation its retries back.
		hr.Status.ClearFailures()
		conditions.Delete(hr, meta.StalledCondition)
	}
	if err := r.checkDependencies(ctx, hr, deps); err != nil {
		return r.fail(hr, err)
	}
	ch, err := r.loadChart(ctx, hr)
	if err != nil {
		return r.fail(hr, err)
	}
	values, err := composeValues(ctx, r.Client, hr, secrets)
	if err != nil {
		return r.fail(hr, &stepError{reason: "InitFailed", err: err})
	}
	if prev := hr.Status.LastAttemptedRevision; prev != "" &&
		(prev != ch.Metadata.Version || hr.Status.LastAttemptedConfigDigest != valuesDigest(values)) {
		// A new chart version or new values get fresh retries, as in Flux.
		hr.Status.ClearFailures()
		conditions.Delete(hr, meta.StalledCondition)
	}
	hr.Status.LastAttemptedGeneration = hr.Generation
	hr.Status.LastAttemptedRevision = ch.Metadata.Version
	hr.Status.LastAttemptedRevisionDigest = ch.OCIDigest
	hr.Status.LastAttemptedValuesChecksum = valuesChecksum(values)
	hr.Status.LastAttemptedConfigDigest = valuesDigest(values)
	conn, err := r.connect(ctx, hr)
	if err != nil {
		return r.fail(hr, kubeConfigError(err))
	}
	if err := r.uninstallMovedRelease(ctx, hr, conn); err != nil {
		return r.fail(hr, conn.explain(ctx, r, hr, err))
	}
	hr.Status.StorageNamespace = hr.GetStorageNamespace()

	if stalled := conditions.Get(hr, meta.StalledCondition); stalled != nil && stalled.Reason == "RetriesExceeded" && !force {
		// Out of retries for this spec: nothing runs until the spec
		// changes or a reset or force is requested.
		return ctrl.Result{}, nil
	}
	cfg, err := r.actionConfig(hr, conn)
	if err != nil {
		return r.fail(hr, &stepError{reason: "InitFailed", err: err})
	}
	kube, err := conn.shared.kubeClient(conn.config, r.Scheme())
	if err != nil {
		return r.fail(hr, &stepError{reason: "InitFailed", err: err})
	}
	waitOptions, err := healthWaitOptions(hr, cfg)
	if err != nil {
		return r.fail(hr, err)
	}
	rel := &releaser{r: r, hr: hr, cfg: cfg, kube: kube, chart: ch, values: values, waitOptions: waitOptions}
	if err := rel.run(ctx, force); err != nil {
		return r.fail(hr, conn.explain(ctx, r, hr, err))
	}
	return ctrl.Result{RequeueAfter: hr.GetRequeueAfter()}, nil
}

// checkDependencies refuses to go on while a dependency is missing or not
// Ready. Nothing polls: a dependency turning Ready queues its dependents.
// A cycle is reported and stalls.
func (r *Reconciler) checkDependencies(ctx context.Context, hr *helmv2.HelmRelease, keys []depgraph.Key) error {
	if cycle := r.Graph.Cycle(graphKey(hr.Namespace, hr.Name)); cycle != nil {
		return &stepError{reason: helmv2.DependencyNotReadyReason, stalled: true,
			err: fmt.Errorf("dependency cycle: %s", depgraph.FormatCycle(cycle))}
	}
	for i, dep := range keys {
		name := dependency.Label(helmv2.HelmReleaseKind, dep)
		if r.NoCrossNamespaceRefs && dep.Namespace != hr.Namespace {
			return &stepError{reason: "AccessDenied", stalled: true,
				err: fmt.Errorf("can't access dependency '%s', cross-namespace references have been blocked", name)}
		}
		d, err := dependency.Get(ctx, r.Client, dep)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return &stepError{reason: helmv2.DependencyNotReadyReason, wait: true, err: fmt.Errorf("dependency '%s' not found", name)}
			}
			return &stepError{reason: helmv2.DependencyNotReadyReason, err: fmt.Errorf("getting dependency '%s': %w", name, err)}
		}
		if expr := hr.Spec.DependsOn[i].ReadyExpr; expr != "" {
			// readyExpr replaces the Ready check, as in Flux. Nothing
			// announces when it turns true: it is looked at again after the
			// retry interval.
			ok, err := dependency.ReadyByExpr(ctx, expr, hr, d)
			if errors.Is(err, dependency.ErrInvalidExpr) {
				return &stepError{reason: meta.InvalidCELExpressionReason, stalled: true, err: err}
			}
			if err != nil {
				return &stepError{reason: helmv2.DependencyNotReadyReason, err: err}
			}
			if !ok {
				return &stepError{reason: helmv2.DependencyNotReadyReason,
					err: fmt.Errorf("dependency '%s' is not ready according to readyExpr eval", name)}
			}
			continue
		}
		if ok, _ := dependency.Ready(d); !ok {
			return &stepError{reason: helmv2.DependencyNotReadyReason, wait: true, err: fmt.Errorf("dependency '%s' is not ready", name)}
		}
	}
	return nil
}

// actionConfig connects the Helm SDK to the release's cluster (see
// connect), with releases stored in Secrets of the storage namespace, as
// the helm command stores them.
func (r *Reconciler) actionConfig(hr *helmv2.HelmRelease, conn *connection) (*action.Configuration, error) {
	return newActionConfig(conn.config, conn.shared, hr.GetStorageNamespace(), hr.GetReleaseNamespace())
}

// SDK is one identity's connection to a cluster for the Helm SDK, with
// its discovery, REST mapper and object validation shared by every
// action made from it, as the controller shares them between releases.
type SDK struct {
	config *rest.Config
	shared *sharedDiscovery
}

// NewSDK returns a connection to the cluster of cfg for the Helm SDK.
func NewSDK(cfg *rest.Config) *SDK { return &SDK{config: cfg, shared: &sharedDiscovery{}} }

// ActionConfig returns a Helm action configuration that stores releases
// in Secrets of storageNamespace and puts the objects that name no
// namespace in releaseNamespace.
func (s *SDK) ActionConfig(storageNamespace, releaseNamespace string) (*action.Configuration, error) {
	return newActionConfig(s.config, s.shared, storageNamespace, releaseNamespace)
}

// newActionConfig connects the Helm SDK to the cluster of cfg through
// the identity's shared discovery and validation.
func newActionConfig(cfg *rest.Config, shared *sharedDiscovery, storageNamespace, releaseNamespace string) (*action.Configuration, error) {
	ac := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	if err := ac.Init(&restGetter{config: cfg, namespace: storageNamespace, shared: shared}, storageNamespace, "secret"); err != nil {
		return nil, fmt.Errorf("connecting the Helm SDK to the cluster: %w", err)
	}
	// The chart's objects that name no namespace go to the release's
	// (spec.targetNamespace), as helm-controller places them; the
	// getter's namespace is only where the release is stored.
	kc, ok := ac.KubeClient.(*kube.Client)
	if !ok {
		return nil, fmt.Errorf("connecting the Helm SDK to the cluster: unexpected client %T", ac.KubeClient)
	}
	kc.Namespace = releaseNamespace
	kc.Factory = validatingFactory{Factory: kc.Factory, shared: shared}
	ac.KubeClient = scopedClient{Client: kc}
	return ac, nil
}

// fail records err on the status and emits a Warning event.
func (r *Reconciler) fail(hr *helmv2.HelmRelease, err error) (ctrl.Result, error) {
	reason := meta.ReconciliationFailedReason
	var se *stepError
	if errors.As(err, &se) {
		reason = se.reason
	}
	msg := err.Error()
	conditions.MarkFalse(hr, meta.ReadyCondition, reason, "%s", msg)
	switch {
	case se != nil && se.stalled:
		conditions.Delete(hr, meta.ReconcilingCondition)
		conditions.MarkStalled(hr, reason, "%s", msg)
	case se != nil && se.wait:
		conditions.Delete(hr, meta.ReconcilingCondition)
	default:
		conditions.MarkReconciling(hr, meta.ProgressingWithRetryReason, "%s", msg)
	}
	switch reason {
	case helmv2.InstallFailedReason, helmv2.UpgradeFailedReason, helmv2.TestFailedReason, "RetriesExceeded":
		// The Helm action already emitted its event.
	default:
		r.event(hr, corev1.EventTypeWarning, reason, msg)
	}
	return ctrl.Result{}, err
}

// event emits an event annotated as Flux's are: the chart revision, the
// digest of the values (token) and the OCI digest of the chart.
func (r *Reconciler) event(hr *helmv2.HelmRelease, eventType, reason, msg string) {
	annotations := map[string]string{}
	for key, value := range map[string]string{
		"revision":   hr.Status.LastAttemptedRevision,
		"token":      hr.Status.LastAttemptedConfigDigest,
		"oci-digest": hr.Status.LastAttemptedRevisionDigest,
	} {
		if value != "" {
			annotations[helmv2.GroupVersion.Group+"/"+key] = value
		}
	}
	r.Recorder.AnnotatedEventf(hr, annotations, eventType, reason, "%s", msg)
}

// finalize uninstalls the release (unless the HelmRelease is suspended),
// deletes the HelmChart made from spec.chart, then drops the finalizer.
func (r *Reconciler) finalize(ctx context.Context, hr *helmv2.HelmRelease) error {
	r.Graph.Remove(graphKey(hr.Namespace, hr.Name))
	if !hr.Spec.Suspend {
		if err := r.uninstallOnDelete(ctx, hr); err != nil {
			r.event(hr, corev1.EventTypeWarning, helmv2.UninstallFailedReason, err.Error())
			return err
		}
	}
	r.remotes.Forget(client.ObjectKeyFromObject(hr))
	if hr.HasChartTemplate() {
		hc := &sourcev1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: hr.Spec.Chart.GetNamespace(hr.Namespace), Name: hr.GetHelmChartName()}}
		if err := r.Delete(ctx, hc); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting HelmChart '%s/%s': %w", hc.Namespace, hc.Name, err)
		}
	}
	if r.Metrics != nil {
		ref := objectRef(hr)
		r.Metrics.DeleteDuration(ref)
		r.Metrics.DeleteSuspend(ref)
	}
	return lifecycle.RemoveFinalizer(ctx, r.Client, hr, helmv2.HelmReleaseFinalizer)
}

func (r *Reconciler) recordMetrics(hr *helmv2.HelmRelease, start time.Time) {
	if r.Metrics == nil || !hr.DeletionTimestamp.IsZero() {
		return
	}
	ref := objectRef(hr)
	r.Metrics.RecordDuration(ref, start)
	r.Metrics.RecordSuspend(ref, hr.Spec.Suspend)
}

func objectRef(hr *helmv2.HelmRelease) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: helmv2.HelmReleaseKind, APIVersion: helmv2.GroupVersion.String(), Namespace: hr.Namespace, Name: hr.Name}
}

func graphKey(namespace, name string) depgraph.Key {
	return depgraph.Key{Kind: helmv2.HelmReleaseKind, Namespace: namespace, Name: name}
}

// uninstallMovedRelease uninstalls the release the HelmRelease made before
// its release name, target namespace or storage namespace changed, as
// helm-controller does, so that the old release's objects do not linger
// beside the new one. The history starts over.
func (r *Reconciler) uninstallMovedRelease(ctx context.Context, hr *helmv2.HelmRelease, conn *connection) error {
	latest := hr.Status.History.Latest()
	if latest == nil {
		return nil
	}
	oldStorage := hr.Status.StorageNamespace
	if oldStorage == "" {
		oldStorage = latest.Namespace
	}
	if latest.Name == ReleaseName(hr) && latest.Namespace == hr.GetReleaseNamespace() && oldStorage == hr.GetStorageNamespace() {
		return nil
	}
	old := hr.DeepCopy()
	old.Spec.StorageNamespace = oldStorage
	cfg, err := r.actionConfig(old, conn)
	if err != nil {
		return &stepError{reason: "InitFailed", err: err}
	}
	x := &releaser{r: r, hr: old, cfg: cfg}
	id := fmt.Sprintf("%s/%s.v%d", latest.Namespace, latest.Name, latest.Version)
	if err := x.uninstall(ctx, latest.Name); err != nil {
		return &stepError{reason: helmv2.UninstallFailedReason,
			err: fmt.Errorf("the release name or namespace changed: Helm uninstall of the previous release %s failed: %w", id, err)}
	}
	hr.Status.History = nil
	r.event(hr, corev1.EventTypeNormal, helmv2.UninstallSucceededReason,
		fmt.Sprintf("Helm uninstall succeeded for release %s: the release name or namespace changed", id))
	return nil
}
