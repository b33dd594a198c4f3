// Package lifecycle holds the steps every weir reconciler shares: its work
// queue's options (with a back-off that an API server outage does not
// grow), reading the object as the last reconcile left it (from the cache
// when it holds this process's writes, else from the API server), and
// adding and removing its finalizer.
package lifecycle

import (
	"context"
	"fmt"
	"reflect"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"k8s.io/client-go/util/workqueue"
)

// Options size a controller's work queue.
type Options struct {
	// Concurrent is the number of objects reconciled at once; 0 means 4.
	Concurrent int
	// MinRetryDelay and MaxRetryDelay bound the back-off after a failure;
	// 0 means the controller's default and 15 minutes (Flux: 750ms and 15m).
	MinRetryDelay, MaxRetryDelay time.Duration
	// Outage, when set, keeps an API server outage from growing the
	// back-off (see Outage).
	Outage *Outage
}

// Controller is controller-runtime's options for o, with minRetry as the
// first retry delay when o names none.
func (o Options) Controller(minRetry time.Duration) controller.Options {
	if o.Concurrent <= 0 {
		o.Concurrent = 4
	}
	if o.MinRetryDelay <= 0 {
		o.MinRetryDelay = minRetry
	}
	if o.MaxRetryDelay <= 0 {
		o.MaxRetryDelay = 15 * time.Minute
	}
	var rl workqueue.TypedRateLimiter[reconcile.Request] = workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](o.MinRetryDelay, o.MaxRetryDelay)
	if o.Outage != nil {
		rl = limiter[reconcile.Request]{inner: rl, o: o.Outage}
	}
	return controller.Options{
		MaxConcurrentReconciles: o.Concurrent,
		RateLimiter:             rl,
	}
}

// Fresh reads objects as the previous reconcile left them, so that a
// reconcile starts from the status the previous one wrote: an action
// decided on a stale status (an artifact, a release history, an
// inventory) would be repeated, and the stale status written back. An
// object is read from the manager's cache when the cache holds every
// write this process made to it (the manager's client records them, see
// TrackWrites), and from the API server otherwise: right after a write,
// until the cache shows it. Reconcilers embed it and call Use from
// SetupWithManager.
type Fresh struct {
	live   client.Reader
	cached client.Reader
	log    *writeLog
}

// Use reads through mgr's cache, when its client records its writes, and
// its API reader.
func (f *Fresh) Use(mgr ctrl.Manager) {
	f.live = mgr.GetAPIReader()
	if t, ok := mgr.GetClient().(interface{ writes() *writeLog }); ok {
		f.cached, f.log = mgr.GetClient(), t.writes()
	}
}

// Get reads key into obj: from the cache when it holds every write this
// process made to the object, else from the API server, or from fallback
// when Use was not called (a reconciler outside a manager).
func (f *Fresh) Get(ctx context.Context, fallback client.Reader, key client.ObjectKey, obj client.Object) error {
	if f.live == nil {
		return fallback.Get(ctx, key, obj)
	}
	if f.log != nil {
		// Read into a copy, so that a stale cached object leaves nothing
		// behind in obj for the API server's answer to be merged into.
		cached, ok := obj.DeepCopyObject().(client.Object)
		if ok && f.cached.Get(ctx, key, cached) == nil && f.log.caughtUp(cached.GetUID(), cached.GetResourceVersion()) {
			dst, src := reflect.ValueOf(obj), reflect.ValueOf(cached)
			if dst.Kind() == reflect.Pointer && dst.Type() == src.Type() {
				dst.Elem().Set(src.Elem())
				return nil
			}
		}
	}
	return f.live.Get(ctx, key, obj)
}

// AddFinalizer adds finalizer to obj in the cluster when it lacks it.
func AddFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	if controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	orig, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("adding the finalizer: %T does not copy as an object", obj)
	}
	patch := client.MergeFrom(orig)
	controllerutil.AddFinalizer(obj, finalizer)
	if err := c.Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("adding the finalizer: %w", err)
	}
	return nil
}

// RemoveFinalizer removes finalizer from obj in the cluster when it has it;
// an object already gone is not an error.
func RemoveFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	if !controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	orig, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("removing the finalizer: %T does not copy as an object", obj)
	}
	patch := client.MergeFrom(orig)
	controllerutil.RemoveFinalizer(obj, finalizer)
	if err := c.Patch(ctx, obj, patch); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("removing the finalizer: %w", err))
	}
	return nil
}
