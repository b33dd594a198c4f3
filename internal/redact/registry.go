package redact

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
)

// Registry holds the Secrets of the objects being reconciled, by
// namespace and name, for one controller (one kind). The zero value is
// ready to use.
type Registry struct {
	m sync.Map // types.NamespacedName -> *Secrets
}

// Start gives key an empty set for one reconcile.
func (r *Registry) Start(key types.NamespacedName) *Secrets {
	s := &Secrets{}
	r.m.Store(key, s)
	return s
}

// Of is key's set, nil (which masks nothing) outside a reconcile.
func (r *Registry) Of(key types.NamespacedName) *Secrets {
	if v, ok := r.m.Load(key); ok {
		return v.(*Secrets)
	}
	return nil
}

// Done drops key's set: its values leave memory with the reconcile.
func (r *Registry) Done(key types.NamespacedName) { r.m.Delete(key) }

// Recorder wraps rec so that the message of an event about an object is
// masked with that object's set.
func (r *Registry) Recorder(rec record.EventRecorder) record.EventRecorder {
	return &maskingRecorder{rec: rec, registry: r}
}

type maskingRecorder struct {
	rec      record.EventRecorder
	registry *Registry
}

func (m *maskingRecorder) secretsOf(obj runtime.Object) *Secrets {
	o, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	return m.registry.Of(types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()})
}

func (m *maskingRecorder) Event(obj runtime.Object, eventtype, reason, message string) {
	m.rec.Event(obj, eventtype, reason, m.secretsOf(obj).Mask(message))
}

func (m *maskingRecorder) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	m.rec.Event(obj, eventtype, reason, m.secretsOf(obj).Mask(fmt.Sprintf(messageFmt, args...)))
}

func (m *maskingRecorder) AnnotatedEventf(obj runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...any) {
	m.rec.AnnotatedEventf(obj, annotations, eventtype, reason, "%s", m.secretsOf(obj).Mask(fmt.Sprintf(messageFmt, args...)))
}
