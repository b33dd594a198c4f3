package repo

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Reader reads objects from a repository's manifests as a cluster client
// would, so that code written for the cluster (valuesFrom, substituteFrom)
// runs offline. Get finds an object by kind, namespace and name; an object
// that declares no namespace matches any. List is not supported.
type Reader struct {
	objects []*unstructured.Unstructured
}

// NewReader returns a Reader over objects.
func NewReader(objects []*unstructured.Unstructured) *Reader { return &Reader{objects: objects} }

// Get implements client.Reader for typed objects of the core API group
// (ConfigMaps, Secrets) and for unstructured objects of any kind.
func (r *Reader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		// Typed objects carry no kind: take it from the Go type's name.
		kind = fmt.Sprintf("%T", obj)
		for i := len(kind) - 1; i >= 0; i-- {
			if kind[i] == '.' {
				kind = kind[i+1:]
				break
			}
		}
	}
	for _, u := range r.objects {
		if u.GetKind() != kind || u.GetName() != key.Name {
			continue
		}
		if ns := u.GetNamespace(); ns != "" && ns != key.Namespace {
			continue
		}
		if _, encrypted := u.Object["sops"]; encrypted {
			return fmt.Errorf("%s %s in the repository is SOPS-encrypted: its values are not read offline", kind, key)
		}
		if dst, ok := obj.(*unstructured.Unstructured); ok {
			u.DeepCopyInto(dst)
			return nil
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
			return fmt.Errorf("%s %s in the repository does not parse: %w", kind, key, err)
		}
		if s, ok := obj.(*corev1.Secret); ok {
			// The API server folds stringData into data on write.
			if s.Data == nil && len(s.StringData) > 0 {
				s.Data = map[string][]byte{}
			}
			for k, v := range s.StringData {
				s.Data[k] = []byte(v)
			}
		}
		return nil
	}
	return apierrors.NewNotFound(schema.GroupResource{Resource: kind}, key.Name)
}

// List implements client.Reader; repositories are not listed.
func (r *Reader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return fmt.Errorf("listing objects is not supported offline")
}
