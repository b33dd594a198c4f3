package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/cel"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/fluxcd/pkg/runtime/predicates"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/weirhq/weir/internal/lifecycle"
)

// ControllerName is the component name on events, as Flux's.
const ControllerName = "notification-controller"

// Finalizer is Flux's finalizer on Receivers.
const Finalizer = "finalizers.fluxcd.io"

// webhookPathIndex indexes Receivers by status.webhookPath.
const webhookPathIndex = ".status.webhookPath"

// Reconciler reconciles Receiver objects: it reads the token and writes
// the webhook path the server answers on.
type Reconciler struct {
	client.Client
	// Recorder emits Kubernetes events.
	Recorder record.EventRecorder

	fresh lifecycle.Fresh
}

// Options size the controller's work queue.
type Options = lifecycle.Options

// SetupWithManager registers the controller and the index the server finds
// Receivers by.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	r.fresh.Use(mgr)
	if err := mgr.GetFieldIndexer().IndexField(ctx, &notificationv1.Receiver{}, webhookPathIndex, func(o client.Object) []string {
		if p := o.(*notificationv1.Receiver).Status.WebhookPath; p != "" {
			return []string{p}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing Receivers by webhook path: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("receiver").
		For(&notificationv1.Receiver{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicates.ReconcileRequestedPredicate{}))).
		WithOptions(opts.Controller(time.Second)).
		Complete(r)
}

// WebhookPath is the path a receiver answers on, as Flux computes it:
// /hook/ and the hex sha256 of the token, the name and the namespace.
func WebhookPath(token, name, namespace string) string {
	sum := sha256.Sum256([]byte(token + name + namespace))
	return notificationv1.ReceiverWebhookPath + hex.EncodeToString(sum[:])
}

// Reconcile reads one Receiver's token and records its webhook path.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &notificationv1.Receiver{}
	if err := r.fresh.Get(ctx, r.Client, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		if controllerutil.ContainsFinalizer(obj, Finalizer) {
			patch := client.MergeFrom(obj.DeepCopy())
			controllerutil.RemoveFinalizer(obj, Finalizer)
			return ctrl.Result{}, client.IgnoreNotFound(r.Patch(ctx, obj, patch))
		}
		return ctrl.Result{}, nil
	}
	if obj.Spec.Suspend {
		ctrl.LoggerFrom(ctx).Info("reconciliation is suspended for this object")
		return ctrl.Result{}, nil
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, obj, Finalizer); err != nil {
		return ctrl.Result{}, err
	}
	orig := obj.DeepCopy()
	if v, ok := meta.ReconcileAnnotationValue(obj.GetAnnotations()); ok {
		obj.Status.SetLastHandledReconcileRequest(v)
	}
	result, recErr := r.reconcile(ctx, obj)
	obj.Status.ObservedGeneration = obj.Generation
	if err := lifecycle.PatchStatus(ctx, r.Client, obj, orig); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, errors.Join(recErr, err)
	}
	if recErr == nil && !conditions.IsTrue(orig, meta.ReadyCondition) {
		r.Recorder.Eventf(obj, corev1.EventTypeNormal, meta.SucceededReason, "%s", conditions.GetMessage(obj, meta.ReadyCondition))
	}
	return result, recErr
}

func (r *Reconciler) reconcile(ctx context.Context, obj *notificationv1.Receiver) (ctrl.Result, error) {
	if err := Supported(obj.Spec.Type); err != nil {
		return r.stall(obj, notificationv1.ValidationFailedReason, err)
	}
	if err := checkFilters(obj); err != nil {
		return r.stall(obj, notificationv1.ValidationFailedReason, err)
	}
	if obj.Spec.SecretRef == nil || obj.Spec.SecretRef.Name == "" {
		return r.stall(obj, notificationv1.ValidationFailedReason, errors.New("secretRef is required"))
	}
	token, err := Token(ctx, r.Client, obj)
	if err != nil {
		conditions.MarkFalse(obj, meta.ReadyCondition, notificationv1.TokenNotFoundReason, "%s", err)
		conditions.Delete(obj, meta.StalledCondition)
		r.Recorder.Event(obj, corev1.EventTypeWarning, notificationv1.TokenNotFoundReason, err.Error())
		// The Secret is not watched: try again soon, then at the interval.
		return ctrl.Result{RequeueAfter: min(obj.GetInterval(), 30*time.Second)}, nil
	}
	path := WebhookPath(token, obj.Name, obj.Namespace)
	obj.Status.WebhookPath = path
	conditions.Delete(obj, meta.StalledCondition)
	conditions.Delete(obj, meta.ReconcilingCondition)
	conditions.MarkTrue(obj, meta.ReadyCondition, meta.SucceededReason, "Receiver initialized for path: %s", path)
	return ctrl.Result{RequeueAfter: obj.GetInterval()}, nil
}

// Token reads a Receiver's token from its Secret (key token).
func Token(ctx context.Context, c client.Reader, obj *notificationv1.Receiver) (string, error) {
	if obj.Spec.SecretRef == nil {
		return "", errors.New("secretRef is required")
	}
	s := &corev1.Secret{}
	key := client.ObjectKey{Namespace: obj.Namespace, Name: obj.Spec.SecretRef.Name}
	if err := c.Get(ctx, key, s); err != nil {
		return "", fmt.Errorf("unable to read token from secret '%s' error: %w", key, err)
	}
	token := string(s.Data["token"])
	if token == "" {
		return "", fmt.Errorf("invalid '%s' secret data: required fields 'token'", key)
	}
	return token, nil
}

// checkFilters compiles the receiver's CEL filters, so that an invalid one
// stalls the Receiver instead of failing each request.
func checkFilters(obj *notificationv1.Receiver) error {
	if obj.Spec.ResourceFilter != "" {
		if _, err := compileFilter(obj.Spec.ResourceFilter); err != nil {
			return fmt.Errorf("invalid resourceFilter expression: %w", err)
		}
	}
	for i, res := range obj.Spec.Resources {
		if res.Filter == "" {
			continue
		}
		if _, err := compileFilter(res.Filter); err != nil {
			return fmt.Errorf("invalid filter expression for resources[%d] (kind=%q, name=%q): %w", i, res.Kind, res.Name, err)
		}
	}
	return nil
}

// compileFilter compiles a filter over the resource (res) and the request
// body (req).
func compileFilter(expr string) (*cel.Expression, error) {
	return cel.NewExpression(expr, cel.WithCompile(), cel.WithStructVariables("res", "req"))
}

func (r *Reconciler) stall(obj *notificationv1.Receiver, reason string, err error) (ctrl.Result, error) {
	conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", err)
	conditions.MarkStalled(obj, reason, "%s", err)
	conditions.Delete(obj, meta.ReconcilingCondition)
	obj.Status.WebhookPath = ""
	r.Recorder.Event(obj, corev1.EventTypeWarning, reason, err.Error())
	return ctrl.Result{}, nil
}
