package kustomize

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// clusterValues reads the ConfigMaps and Secrets a render needs straight
// from the API server (weir does not cache them).
type clusterValues struct{ c client.Reader }

func (v clusterValues) ConfigMap(ctx context.Context, namespace, name string) (map[string]string, error) {
	var cm corev1.ConfigMap
	if err := v.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, val := range cm.Data {
		out[k] = val
	}
	for k, val := range cm.BinaryData {
		out[k] = string(val)
	}
	return out, nil
}

func (v clusterValues) Secret(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	var s corev1.Secret
	if err := v.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, err
	}
	return s.Data, nil
}
