package lifecycle

import (
	"context"
	"errors"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writeLog remembers, for each object this process wrote through a
// tracked client, the resource version its last write returned: the
// manager's cache holds that write once it holds the object at that
// version. Fresh reads an object from the cache when the cache holds every
// write this process made to it, and from the API server otherwise.
//
// Only typed objects are recorded: the reconciled kinds, and the few
// others weir writes through the manager's client (HelmCharts,
// ExternalArtifacts). An object deleted after a write keeps its entry, a
// few bytes per Flux object removed.
//
// A write whose outcome is unknown (an error, a timeout, a delete, which
// returns no version) is recorded as unknownVersion, which no cached
// object matches: the object is read from the API server until a later
// write succeeds and the cache catches up with it.
type writeLog struct {
	mu   sync.Mutex
	last map[types.UID]string
}

// errVersionUnknown stands for the outcome of a write that returns no
// version of the object.
var errVersionUnknown = errors.New("the write returns no version of the object")

// unknownVersion marks an object whose last write may or may not have
// happened; resource versions are never empty.
const unknownVersion = ""

// record notes the write of obj that ended with err.
func (l *writeLog) record(obj client.Object, err error) {
	if _, ok := obj.(runtime.Unstructured); ok {
		// What a Kustomization applies: never read through Fresh, and
		// kept out so that the log does not grow with every object
		// applied and pruned.
		return
	}
	uid := obj.GetUID()
	if uid == "" {
		return // a create that failed: nothing exists to be stale about
	}
	rv := obj.GetResourceVersion()
	if err != nil {
		rv = unknownVersion
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[types.UID]string{}
	}
	l.last[uid] = rv
}

// caughtUp reports whether an object read from the cache at resource
// version rv holds every write this process made to it: it was never
// written, or its last write returned rv. The object is then forgotten,
// so the log holds only writes the cache has not shown yet.
func (l *writeLog) caughtUp(uid types.UID, rv string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	last, written := l.last[uid]
	if !written {
		return true
	}
	if last == unknownVersion || last != rv {
		return false
	}
	delete(l.last, uid)
	return true
}

// TrackWrites returns c with every write it makes recorded, so that the
// reconcilers' Fresh reads can be answered from the cache whenever it
// already holds them. The manager's client is made with it.
func TrackWrites(c client.Client) client.Client {
	return &trackingClient{Client: c, log: &writeLog{}}
}

// trackingClient is a client whose writes go to its writeLog. Apply and
// DeleteAllOf pass through unrecorded: weir applies with them what a
// FluxInstance installs and its FluxReport, spec and not status; a
// change they make reaches the reconcilers through the cache's events,
// and the status writes that Fresh guards go through Patch.
type trackingClient struct {
	client.Client
	log *writeLog
}

// writes gives Fresh the log of a tracked client.
func (c *trackingClient) writes() *writeLog { return c.log }

// Create implements client.Writer.
func (c *trackingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	err := c.Client.Create(ctx, obj, opts...)
	c.log.record(obj, err)
	return err
}

// Update implements client.Writer.
func (c *trackingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	err := c.Client.Update(ctx, obj, opts...)
	c.log.record(obj, err)
	return err
}

// Patch implements client.Writer.
func (c *trackingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	err := c.Client.Patch(ctx, obj, patch, opts...)
	c.log.record(obj, err)
	return err
}

// Delete implements client.Writer. A delete returns no version (an object
// with finalizers is changed, not removed): the object is read from the
// API server from then on.
func (c *trackingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	err := c.Client.Delete(ctx, obj, opts...)
	c.log.record(obj, errVersionUnknown)
	return err
}

// Status implements client.StatusClient.
func (c *trackingClient) Status() client.SubResourceWriter {
	return &trackingSubResource{SubResourceWriter: c.Client.Status(), log: c.log}
}

// SubResource implements client.SubResourceClientConstructor.
func (c *trackingClient) SubResource(name string) client.SubResourceClient {
	sc := c.Client.SubResource(name)
	return &trackingSubResourceClient{SubResourceReader: sc, trackingSubResource: &trackingSubResource{SubResourceWriter: sc, log: c.log}}
}

// trackingSubResource records the writes of a subresource (status).
type trackingSubResource struct {
	client.SubResourceWriter
	log *writeLog
}

// Create implements client.SubResourceWriter.
func (s *trackingSubResource) Create(ctx context.Context, obj client.Object, sub client.Object, opts ...client.SubResourceCreateOption) error {
	err := s.SubResourceWriter.Create(ctx, obj, sub, opts...)
	s.log.record(obj, errVersionUnknown) // the response is sub's, not obj's
	return err
}

// Update implements client.SubResourceWriter.
func (s *trackingSubResource) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	err := s.SubResourceWriter.Update(ctx, obj, opts...)
	s.log.record(obj, err)
	return err
}

// Patch implements client.SubResourceWriter.
func (s *trackingSubResource) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	err := s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
	s.log.record(obj, err)
	return err
}

// trackingSubResourceClient is a SubResourceClient whose writes are
// recorded.
type trackingSubResourceClient struct {
	client.SubResourceReader
	*trackingSubResource
}
