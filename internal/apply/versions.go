package apply

import (
	"context"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Version identifies one state of an object: its UID, and the generation
// of its spec. A copy read later (from a cache) with another UID or an
// older generation was read before the apply and must not be judged.
type Version struct {
	UID        types.UID
	Generation int64
}

// Versions are the versions one apply left in the cluster, by object.
type Versions map[object.ObjMetadata]Version

// versionRecorder is the client an apply runs through: it notes the
// version of every object the API server returns, from reads of the live
// object and from the responses to writes, so that the caller learns what
// the apply left without reading again.
type versionRecorder struct {
	client.Client

	mu       sync.Mutex
	versions Versions
}

func (v *versionRecorder) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := v.Client.Get(ctx, key, obj, opts...)
	if err == nil {
		v.note(obj)
	}
	return err
}

func (v *versionRecorder) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	err := v.Client.Patch(ctx, obj, patch, opts...)
	po := &client.PatchOptions{}
	po.ApplyOptions(opts)
	if err == nil && len(po.DryRun) == 0 {
		v.note(obj)
	}
	return err
}

// note keeps the newest version seen of obj: a new UID (the object was
// deleted and created again) replaces the old one, a generation only
// grows.
func (v *versionRecorder) note(obj client.Object) {
	if obj.GetUID() == "" {
		return
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	id := object.ObjMetadata{Namespace: obj.GetNamespace(), Name: obj.GetName(), GroupKind: gvk.GroupKind()}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.versions == nil {
		v.versions = Versions{}
	}
	if old, ok := v.versions[id]; ok && old.UID == obj.GetUID() && old.Generation > obj.GetGeneration() {
		return
	}
	v.versions[id] = Version{UID: obj.GetUID(), Generation: obj.GetGeneration()}
}
