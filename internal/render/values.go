package render

import (
	"context"
	"encoding/base64"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Objects is a Values that serves the ConfigMaps and Secrets found among
// objects, for renders without a cluster: `weir build` can hand it the
// manifests of a repository, so that a substituteFrom naming its
// cluster-settings ConfigMap resolves offline. An object without a
// namespace matches any namespace.
type Objects []*unstructured.Unstructured

var _ Values = Objects(nil)

func (o Objects) find(kind, namespace, name string) *unstructured.Unstructured {
	for _, u := range o {
		if u.GetKind() == kind && u.GetAPIVersion() == "v1" && u.GetName() == name &&
			(u.GetNamespace() == namespace || u.GetNamespace() == "") {
			return u
		}
	}
	return nil
}

// ConfigMap returns the data (and binaryData, as strings) of the ConfigMap.
func (o Objects) ConfigMap(_ context.Context, namespace, name string) (map[string]string, error) {
	u := o.find("ConfigMap", namespace, name)
	if u == nil {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
	}
	out, _, err := unstructured.NestedStringMap(u.Object, "data")
	if err != nil {
		return nil, fmt.Errorf("ConfigMap '%s': %w", name, err)
	}
	if out == nil {
		out = map[string]string{}
	}
	bin, _, err := unstructured.NestedStringMap(u.Object, "binaryData")
	if err != nil {
		return nil, fmt.Errorf("ConfigMap '%s': %w", name, err)
	}
	for k, v := range bin {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap '%s': binaryData '%s' is not base64", name, k)
		}
		out[k] = string(b)
	}
	return out, nil
}

// Secret returns the data and stringData of the Secret, stringData taking
// precedence as the API server does.
func (o Objects) Secret(_ context.Context, namespace, name string) (map[string][]byte, error) {
	u := o.find("Secret", namespace, name)
	if u == nil {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
	}
	out := map[string][]byte{}
	data, _, err := unstructured.NestedStringMap(u.Object, "data")
	if err != nil {
		return nil, fmt.Errorf("Secret '%s': %w", name, err)
	}
	for k, v := range data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("Secret '%s': data '%s' is not base64", name, k)
		}
		out[k] = b
	}
	strs, _, err := unstructured.NestedStringMap(u.Object, "stringData")
	if err != nil {
		return nil, fmt.Errorf("Secret '%s': %w", name, err)
	}
	for k, v := range strs {
		out[k] = []byte(v)
	}
	return out, nil
}
