package kustomize

import (
	"context"
	"fmt"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/object"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/weirhq/weir/internal/apply"
)

// healthWatch follows the objects Kustomizations applied, through
// informers restricted to objects that carry the ownership label, and
// queues the owning Kustomization when one of them changes while it waits
// for their health: health is noticed as it happens, not on a polling
// period, and a Ready Kustomization is not re-applied by status churn.
type healthWatch struct {
	cache   cache.Cache
	api     client.Reader
	ctrl    controller.Controller
	waiting func(client.ObjectKey) bool

	mu      sync.Mutex
	watched map[schema.GroupVersionKind]bool
}

func newHealthWatch(mgr ctrl.Manager, c controller.Controller, waiting func(client.ObjectKey) bool) (*healthWatch, error) {
	owned, err := labels.NewRequirement(apply.LabelGroup+"/name", selection.Exists, nil)
	if err != nil {
		return nil, fmt.Errorf("building the ownership selector: %w", err)
	}
	hc, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultLabelSelector: labels.NewSelector().Add(*owned),
		// Health is read from status, spec and metadata; the
		// managedFields that kubectl, weir and the cluster's own
		// controllers write to every applied object are not kept.
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the health cache: %w", err)
	}
	if err := mgr.Add(hc); err != nil {
		return nil, fmt.Errorf("adding the health cache: %w", err)
	}
	return &healthWatch{cache: hc, api: mgr.GetAPIReader(), ctrl: c, waiting: waiting, watched: map[schema.GroupVersionKind]bool{}}, nil
}

// watch makes sure every kind among objects is watched, and synced.
func (h *healthWatch) watch(ctx context.Context, objects []*unstructured.Unstructured) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range objects {
		gvk := o.GroupVersionKind()
		if h.watched[gvk] {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		src := source.Kind[client.Object](h.cache, u, handler.EnqueueRequestsFromMapFunc(h.owner))
		if err := h.ctrl.Watch(src); err != nil {
			return fmt.Errorf("watching %s: %w", gvk.Kind, err)
		}
		if _, err := h.cache.GetInformer(ctx, u); err != nil {
			return fmt.Errorf("syncing the informer of %s: %w", gvk.Kind, err)
		}
		h.watched[gvk] = true
	}
	return nil
}

// reader reads applied objects from the health cache and, for health
// checks that name objects this controller did not apply (so they carry no
// ownership label and are not in that cache), straight from the API
// server; it records that it had to, because no event will announce
// their changes.
func (h *healthWatch) reader() *fallbackReader {
	return &fallbackReader{cache: h.cache, api: h.api}
}

// healthReader reads the objects whose health a Kustomization waits for:
// in this cluster, from the health cache (watching their kinds) with the
// API server behind it; in a remote cluster, from its API server, which
// sends no events here, so that the wait is looked at again periodically.
func (r *Reconciler) healthReader(ctx context.Context, t *target, objects []*unstructured.Unstructured) (*fallbackReader, error) {
	if t.remote != nil {
		return &fallbackReader{api: t.reader, usedAPI: true}, nil
	}
	if err := r.health.watch(ctx, objects); err != nil {
		return nil, err
	}
	return r.health.reader(), nil
}

// fallbackReader is a client.Reader over the health cache with the API
// server behind it; without a cache, it reads the API server only.
type fallbackReader struct {
	cache, api client.Reader
	// usedAPI is set once an object was read from the API server.
	usedAPI bool
}

func (f *fallbackReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if f.cache == nil {
		return f.api.Get(ctx, key, obj, opts...)
	}
	err := f.cache.Get(ctx, key, obj, opts...)
	if !apierrors.IsNotFound(err) {
		return err
	}
	f.usedAPI = true
	return f.api.Get(ctx, key, obj, opts...)
}

func (f *fallbackReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if f.cache == nil {
		return f.api.List(ctx, list, opts...)
	}
	return f.cache.List(ctx, list, opts...)
}

// owner maps an applied object to its Kustomization through its labels,
// when that Kustomization waits for health.
func (h *healthWatch) owner(_ context.Context, o client.Object) []reconcile.Request {
	l := o.GetLabels()
	key := client.ObjectKey{Namespace: l[apply.LabelGroup+"/namespace"], Name: l[apply.LabelGroup+"/name"]}
	if key.Name == "" || key.Namespace == "" || !h.waiting(key) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: key}}
}

// healthTargets are the objects whose health gates Ready: every applied
// object with spec.wait, else the spec.healthChecks. Each one the apply
// touched carries the version it left, so that a cached copy from before
// the apply is not taken for its health.
func (r *Reconciler) healthTargets(obj *kustomizev1.Kustomization, applied []*unstructured.Unstructured, versions apply.Versions) ([]*unstructured.Unstructured, error) {
	expect := func(u *unstructured.Unstructured) {
		if v, ok := versions[object.UnstructuredToObjMetadata(u)]; ok {
			apply.Expect(u, v)
		}
	}
	if obj.Spec.Wait {
		out := make([]*unstructured.Unstructured, 0, len(applied))
		for _, a := range applied {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(a.GroupVersionKind())
			u.SetNamespace(a.GetNamespace())
			u.SetName(a.GetName())
			expect(u)
			out = append(out, u)
		}
		return out, nil
	}
	out := make([]*unstructured.Unstructured, 0, len(obj.Spec.HealthChecks))
	for _, hc := range obj.Spec.HealthChecks {
		gv, err := schema.ParseGroupVersion(hc.APIVersion)
		if err != nil {
			return nil, &stepError{reason: "HealthCheckFailed", err: fmt.Errorf("healthChecks: apiVersion %q: %w", hc.APIVersion, err)}
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gv.WithKind(hc.Kind))
		u.SetNamespace(hc.Namespace)
		u.SetName(hc.Name)
		expect(u)
		out = append(out, u)
	}
	return out, nil
}
