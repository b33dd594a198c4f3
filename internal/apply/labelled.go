package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labelled finds every object in the cluster that carries owner's labels,
// for the deletion of a Kustomization whose inventory cannot be read: one
// list of metadata per kind that can be listed and deleted, read through r
// (the API server, not a cache). Kinds whose API group does not answer
// discovery (an aggregated API that is down) are left out and logged: a
// deletion is not held up by an API that holds none of these objects.
func Labelled(ctx context.Context, cfg *rest.Config, r client.Reader, owner Owner) ([]*unstructured.Unstructured, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a discovery client: %w", err)
	}
	lists, discoveryErr := dc.ServerPreferredResources()
	if discoveryErr != nil && !discovery.IsGroupDiscoveryFailedError(discoveryErr) {
		return nil, fmt.Errorf("listing the kinds the API server serves: %w", discoveryErr)
	}
	selector := client.MatchingLabels{LabelGroup + "/name": owner.Name, LabelGroup + "/namespace": owner.Namespace}
	var out []*unstructured.Unstructured
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, res := range l.APIResources {
			if strings.Contains(res.Name, "/") || !slices.Contains(res.Verbs, "list") || !slices.Contains(res.Verbs, "delete") {
				continue
			}
			list := &metav1.PartialObjectMetadataList{}
			list.SetGroupVersionKind(gv.WithKind(res.Kind + "List"))
			if err := r.List(ctx, list, selector); err != nil {
				return nil, fmt.Errorf("listing %s with the labels of %s/%s: %w", res.Name, owner.Namespace, owner.Name, err)
			}
			for _, item := range list.Items {
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(gv.WithKind(res.Kind))
				u.SetNamespace(item.Namespace)
				u.SetName(item.Name)
				out = append(out, u)
			}
		}
	}
	if discoveryErr != nil {
		ctrl.LoggerFrom(ctx).Info("some API groups were not searched for labelled objects", "error", discoveryErr.Error())
	}
	return out, nil
}
