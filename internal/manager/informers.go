package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/go-logr/logr"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// lenientInformers builds the cache's informers. With the typed list and
// watch of controller-runtime, one object that does not decode fails every
// list of its kind: the informer never syncs, and no object of that kind is
// reconciled, created, changed or deleted. Flux's kinds can hold such
// objects (a duration past 292 years passes Flux's pattern), so the
// informers of the reconciled kinds list and watch through
// lenientListWatch instead, which leaves out the objects that do not decode
// and marks them Stalled. The namespace and label selector are the
// manager's, as the cache would apply them.
type lenientInformers struct {
	scheme    *runtime.Scheme
	dynamic   dynamic.Interface
	mapper    func() apimeta.RESTMapper
	namespace string
	selector  string
	log       logr.Logger

	mu       sync.Mutex
	reported map[types.UID]string // the generation and error last reported
}

// NewInformer is cache.Options.NewInformer.
func (l *lenientInformers) NewInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	lenient, err := l.listWatch(obj)
	switch {
	case err == nil:
		lw = lenient
	case !errors.Is(err, errNotReconciled):
		l.log.Error(err, "listing objects strictly: one that does not decode will stop the list of its kind")
	}
	return toolscache.NewSharedIndexInformer(lw, obj, resync, indexers)
}

// errNotReconciled marks a kind weir lists as controller-runtime does.
var errNotReconciled = errors.New("not a reconciled kind")

// reconciled reports whether obj is of one of reconciledKinds.
func reconciled(obj runtime.Object) bool {
	for _, k := range reconciledKinds {
		if reflect.TypeOf(k.obj) == reflect.TypeOf(obj) {
			return true
		}
	}
	return false
}

// listWatch returns the lenient list and watch of obj's kind.
func (l *lenientInformers) listWatch(obj runtime.Object) (toolscache.ListerWatcher, error) {
	gvk, err := apiutil.GVKForObject(obj, l.scheme)
	if err != nil {
		return nil, err
	}
	if !reconciled(obj) {
		return nil, errNotReconciled
	}
	mapping, err := l.mapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("finding the resource of %s: %w", gvk, err)
	}
	ri := l.dynamic.Resource(mapping.Resource)
	var res dynamic.ResourceInterface = ri
	if l.namespace != "" {
		res = ri.Namespace(l.namespace)
	}
	lw := &lenientListWatch{gvk: gvk, res: res, scheme: l.scheme, selector: l.selector, report: l.report}
	return &toolscache.ListWatch{ListWithContextFunc: lw.list, WatchFuncWithContext: lw.watch}, nil
}

// lenientListWatch lists and watches one kind as unstructured objects and
// decodes them one by one into their Go type.
type lenientListWatch struct {
	gvk      schema.GroupVersionKind
	res      dynamic.ResourceInterface
	scheme   *runtime.Scheme
	selector string
	report   func(gvk schema.GroupVersionKind, u *unstructured.Unstructured, err error)

	mu sync.Mutex
	// cached holds the UIDs of the objects last passed to the informer,
	// so that one that stops decoding can be taken out of its cache.
	cached map[types.UID]bool
}

// remember records whether the object uid is in the informer's cache, and
// reports whether it was.
func (lw *lenientListWatch) remember(uid types.UID, in bool) (was bool) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.cached == nil {
		lw.cached = map[types.UID]bool{}
	}
	was = lw.cached[uid]
	if in {
		lw.cached[uid] = true
	} else {
		delete(lw.cached, uid)
	}
	return was
}

func (lw *lenientListWatch) list(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	if lw.selector != "" {
		opts.LabelSelector = lw.selector
	}
	ul, err := lw.res.List(ctx, opts)
	if err != nil {
		return nil, err
	}
	list, err := lw.scheme.New(lw.gvk.GroupVersion().WithKind(lw.gvk.Kind + "List"))
	if err != nil {
		return nil, err
	}
	items := make([]runtime.Object, 0, len(ul.Items))
	for i := range ul.Items {
		obj, err := lw.decode(&ul.Items[i])
		if err != nil {
			lw.report(lw.gvk, &ul.Items[i], err)
			lw.remember(ul.Items[i].GetUID(), false)
			continue
		}
		lw.remember(ul.Items[i].GetUID(), true)
		items = append(items, obj)
	}
	if err := apimeta.SetList(list, items); err != nil {
		return nil, err
	}
	lm, err := apimeta.ListAccessor(list)
	if err != nil {
		return nil, err
	}
	lm.SetResourceVersion(ul.GetResourceVersion())
	lm.SetContinue(ul.GetContinue())
	lm.SetRemainingItemCount(ul.GetRemainingItemCount())
	return list, nil
}

func (lw *lenientListWatch) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	if lw.selector != "" {
		opts.LabelSelector = lw.selector
	}
	w, err := lw.res.Watch(ctx, opts)
	if err != nil {
		return nil, err
	}
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		u, ok := e.Object.(*unstructured.Unstructured)
		if !ok || e.Type == watch.Error {
			return e, true // the reflector reads the API server's Status
		}
		if e.Type == watch.Bookmark {
			obj, err := lw.scheme.New(lw.gvk)
			if err != nil {
				return e, false
			}
			obj.(client.Object).SetResourceVersion(u.GetResourceVersion())
			obj.(client.Object).SetAnnotations(u.GetAnnotations())
			e.Object = obj
			return e, true
		}
		obj, err := lw.decode(u)
		if err == nil {
			lw.remember(u.GetUID(), e.Type != watch.Deleted)
			e.Object = obj
			return e, true
		}
		lw.report(lw.gvk, u, err)
		if !lw.remember(u.GetUID(), false) || e.Type == watch.Added {
			return e, false
		}
		// An object changed into one that does not decode leaves the cache,
		// rather than being reconciled as it was before.
		gone, nerr := lw.scheme.New(lw.gvk)
		if nerr != nil {
			return e, false
		}
		g := gone.(client.Object)
		g.SetNamespace(u.GetNamespace())
		g.SetName(u.GetName())
		g.SetUID(u.GetUID())
		g.SetResourceVersion(u.GetResourceVersion())
		return watch.Event{Type: watch.Deleted, Object: gone}, true
	}), nil
}

// decode converts u into its Go type, as the typed client would.
func (lw *lenientListWatch) decode(u *unstructured.Unstructured) (runtime.Object, error) {
	obj, err := lw.scheme.New(lw.gvk)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, obj); err != nil {
		return nil, err
	}
	obj.GetObjectKind().SetGroupVersionKind(lw.gvk)
	return obj, nil
}

// report logs an object that does not decode, naming it, and marks it
// Ready=False and Stalled with the reason, once per generation and error:
// its controller never sees it, and nothing else would tell its owner.
func (l *lenientInformers) report(gvk schema.GroupVersionKind, u *unstructured.Unstructured, err error) {
	msg := fmt.Sprintf("weir cannot read this %s: %s", gvk.Kind, decodeMessage(err))
	key := fmt.Sprintf("%d %s", u.GetGeneration(), msg)
	l.mu.Lock()
	if l.reported == nil {
		l.reported = map[types.UID]string{}
	}
	seen := l.reported[u.GetUID()] == key
	l.reported[u.GetUID()] = key
	l.mu.Unlock()
	if seen {
		return
	}
	l.log.Error(err, "leaving out an object that cannot be decoded until it is fixed",
		"kind", gvk.Kind, "namespace", u.GetNamespace(), "name", u.GetName())
	if !stalledWith(u, msg) {
		go l.markStalled(gvk, u, msg)
	}
}

// markStalled writes the Ready and Stalled conditions of u.
func (l *lenientInformers) markStalled(gvk schema.GroupVersionKind, u *unstructured.Unstructured, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mapping, err := l.mapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		l.log.Error(err, "marking an object that cannot be decoded", "kind", gvk.Kind, "namespace", u.GetNamespace(), "name", u.GetName())
		return
	}
	now := metav1.Now()
	cond := func(t string) metav1.Condition {
		return metav1.Condition{Type: t, Status: metav1.ConditionTrue, Reason: invalidObjectReason, Message: msg,
			ObservedGeneration: u.GetGeneration(), LastTransitionTime: now}
	}
	ready := cond(meta.ReadyCondition)
	ready.Status = metav1.ConditionFalse
	patch, err := json.Marshal(map[string]any{
		"status": map[string]any{"conditions": []metav1.Condition{ready, cond(meta.StalledCondition)}},
	})
	if err != nil {
		return
	}
	_, err = l.dynamic.Resource(mapping.Resource).Namespace(u.GetNamespace()).
		Patch(ctx, u.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		l.log.Error(err, "marking an object that cannot be decoded", "kind", gvk.Kind, "namespace", u.GetNamespace(), "name", u.GetName())
	}
}

// invalidObjectReason is the reason of an object weir cannot decode.
const invalidObjectReason = "InvalidObject"

// stalledWith reports whether u already says msg in its Stalled condition.
func stalledWith(u *unstructured.Unstructured, msg string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == meta.StalledCondition && m["message"] == msg && m["reason"] == invalidObjectReason {
			return true
		}
	}
	return false
}

// decodeMessage words a decoding error for the object's owner. Go's
// duration parser names the value, which is enough to find the field:
// `time: invalid duration "999999999h"`.
func decodeMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}
