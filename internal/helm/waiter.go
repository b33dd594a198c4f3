package helm

import (
	"context"
	"log/slog"
	"time"

	"helm.sh/helm/v4/pkg/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
)

// scopedClient is the Helm SDK's client with its waits watching only the
// release's own objects.
//
// The Helm SDK waits for a release by watching, for each kind in it,
// every object of that kind in the release's namespace, and every one of
// them is listed, decoded and kept by each release's watch: with a
// thousand releases of one chart in one namespace, each install read a
// thousand Deployments, Services and ConfigMaps, a cost that grows with
// the square of the releases. Where a release has one object of a kind
// in a namespace (the usual case), scopedClient's waits list and watch
// that object alone, by name; the statuses computed and the messages of
// a failed wait are the Helm SDK's own.
type scopedClient struct {
	*kube.Client
}

// GetWaiter implements kube.Interface.
func (c scopedClient) GetWaiter(strategy kube.WaitStrategy) (kube.Waiter, error) {
	return c.GetWaiterWithOptions(strategy)
}

// GetWaiterWithOptions implements kube.InterfaceWaitOptions: the status
// watcher scoped to the objects of each wait, other strategies as the
// Helm SDK makes them.
func (c scopedClient) GetWaiterWithOptions(strategy kube.WaitStrategy, opts ...kube.WaitOption) (kube.Waiter, error) {
	if strategy != kube.StatusWatcherStrategy {
		return c.Client.GetWaiterWithOptions(strategy, opts...)
	}
	return &scopedWaiter{client: c.Client, opts: opts}, nil
}

// scopedWaiter makes, for each wait, the Helm SDK's status watcher on a
// dynamic client scoped to the objects waited for.
type scopedWaiter struct {
	client *kube.Client
	opts   []kube.WaitOption
}

// waiter returns the Helm SDK's status waiter for resources.
func (w *scopedWaiter) waiter(resources kube.ResourceList) (kube.Waiter, error) {
	inner := &kube.Client{
		Factory:     scopedFactory{Factory: w.client.Factory, names: singleNames(resources)},
		Namespace:   w.client.Namespace,
		WaitContext: w.client.WaitContext, //nolint:staticcheck // kept as the SDK's own waiter reads it
	}
	inner.SetLogger(slog.DiscardHandler)
	return inner.GetWaiterWithOptions(kube.StatusWatcherStrategy, w.opts...)
}

// Wait implements kube.Waiter.
func (w *scopedWaiter) Wait(resources kube.ResourceList, timeout time.Duration) error {
	sw, err := w.waiter(resources)
	if err != nil {
		return err
	}
	return sw.Wait(resources, timeout)
}

// WaitWithJobs implements kube.Waiter.
func (w *scopedWaiter) WaitWithJobs(resources kube.ResourceList, timeout time.Duration) error {
	sw, err := w.waiter(resources)
	if err != nil {
		return err
	}
	return sw.WaitWithJobs(resources, timeout)
}

// WaitForDelete implements kube.Waiter.
func (w *scopedWaiter) WaitForDelete(resources kube.ResourceList, timeout time.Duration) error {
	sw, err := w.waiter(resources)
	if err != nil {
		return err
	}
	return sw.WaitForDelete(resources, timeout)
}

// WatchUntilReady implements kube.Waiter.
func (w *scopedWaiter) WatchUntilReady(resources kube.ResourceList, timeout time.Duration) error {
	sw, err := w.waiter(resources)
	if err != nil {
		return err
	}
	return sw.WatchUntilReady(resources, timeout)
}

// scope is a resource in a namespace ("" for cluster-scoped resources
// and all namespaces).
type scope struct {
	resource  schema.GroupResource
	namespace string
}

// singleNames maps each resource and namespace of which resources hold
// exactly one object to that object's name.
func singleNames(resources kube.ResourceList) map[scope]string {
	names := map[scope]string{}
	count := map[scope]int{}
	for _, info := range resources {
		if info.Mapping == nil {
			continue
		}
		s := scope{resource: info.Mapping.Resource.GroupResource(), namespace: info.Namespace}
		count[s]++
		names[s] = info.Name
	}
	for s, n := range count {
		if n != 1 {
			delete(names, s)
		}
	}
	return names
}

// scopedFactory hands the status watcher a dynamic client scoped to
// names.
type scopedFactory struct {
	kube.Factory
	names map[scope]string
}

// DynamicClient implements kube.Factory.
func (f scopedFactory) DynamicClient() (dynamic.Interface, error) {
	c, err := f.Factory.DynamicClient()
	if err != nil {
		return nil, err
	}
	return scopedDynamic{Interface: c, names: f.names}, nil
}

// scopedDynamic is a dynamic client whose unfiltered lists and watches of
// a resource and namespace in names select that one object by name. A
// list or watch with a selector of its own (the status readers' lists of
// a Deployment's ReplicaSets and Pods) is left as it is.
type scopedDynamic struct {
	dynamic.Interface
	names map[scope]string
}

// Resource implements dynamic.Interface.
func (d scopedDynamic) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	return scopedResource{NamespaceableResourceInterface: d.Interface.Resource(gvr), names: d.names, resource: gvr.GroupResource()}
}

// scopedResource is a resource of scopedDynamic, in every namespace or
// (once Namespace is called) in one.
type scopedResource struct {
	dynamic.NamespaceableResourceInterface
	names    map[scope]string
	resource schema.GroupResource
}

// Namespace implements dynamic.NamespaceableResourceInterface.
func (r scopedResource) Namespace(ns string) dynamic.ResourceInterface {
	return scopedNamespaced{ResourceInterface: r.NamespaceableResourceInterface.Namespace(ns), names: r.names, scope: scope{resource: r.resource, namespace: ns}}
}

// List implements dynamic.ResourceInterface.
func (r scopedResource) List(ctx context.Context, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	return r.NamespaceableResourceInterface.List(ctx, scoped(opts, r.names, scope{resource: r.resource}))
}

// Watch implements dynamic.ResourceInterface.
func (r scopedResource) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return r.NamespaceableResourceInterface.Watch(ctx, scoped(opts, r.names, scope{resource: r.resource}))
}

// scopedNamespaced is a resource of scopedDynamic in one namespace.
type scopedNamespaced struct {
	dynamic.ResourceInterface
	names map[scope]string
	scope scope
}

// List implements dynamic.ResourceInterface.
func (r scopedNamespaced) List(ctx context.Context, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	return r.ResourceInterface.List(ctx, scoped(opts, r.names, r.scope))
}

// Watch implements dynamic.ResourceInterface.
func (r scopedNamespaced) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return r.ResourceInterface.Watch(ctx, scoped(opts, r.names, r.scope))
}

// scoped returns opts selecting the one object names holds for s, when
// opts select nothing themselves.
func scoped(opts metav1.ListOptions, names map[scope]string, s scope) metav1.ListOptions {
	name, ok := names[s]
	if !ok || opts.FieldSelector != "" || opts.LabelSelector != "" {
		return opts
	}
	opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	return opts
}
