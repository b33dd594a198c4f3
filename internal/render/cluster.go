package render

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ClusterValues is a Values that reads ConfigMaps and Secrets through a
// Kubernetes client (the controller's, or the CLI's for `weir diff`).
// Build itself never talks to a cluster: it only calls these methods.
type ClusterValues struct{ Reader client.Reader }

var _ Values = ClusterValues{}

// ConfigMap returns the data (and binary data, as text) of a ConfigMap.
func (v ClusterValues) ConfigMap(ctx context.Context, namespace, name string) (map[string]string, error) {
	var cm corev1.ConfigMap
	if err := v.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(cm.Data)+len(cm.BinaryData))
	for k, val := range cm.Data {
		out[k] = val
	}
	for k, val := range cm.BinaryData {
		out[k] = string(val)
	}
	return out, nil
}

// Secret returns the data of a Secret.
func (v ClusterValues) Secret(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	var s corev1.Secret
	if err := v.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, err
	}
	return s.Data, nil
}
