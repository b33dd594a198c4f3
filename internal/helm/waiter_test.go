package helm

import (
	"testing"

	"helm.sh/helm/v4/pkg/kube"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/resource"
)

func info(group, res, ns, name string) *resource.Info {
	return &resource.Info{Namespace: ns, Name: name,
		Mapping: &meta.RESTMapping{Resource: schema.GroupVersionResource{Group: group, Version: "v1", Resource: res}}}
}

// TestScopedWaitsSelectOnlyTheReleaseObject checks what keeps a wait
// from reading every object of a kind in the namespace: a kind the
// release has one object of is listed by name; a kind it has several of
// in a namespace, a list that selects on its own (a Deployment's
// ReplicaSets by label) and kinds the release has none of are left
// alone.
func TestScopedWaitsSelectOnlyTheReleaseObject(t *testing.T) {
	names := singleNames(kube.ResourceList{
		info("apps", "deployments", "apps", "web"),
		info("", "configmaps", "apps", "one"),
		info("", "configmaps", "apps", "two"),
		info("", "configmaps", "other", "three"),
		info("rbac.authorization.k8s.io", "clusterroles", "", "reader"),
	})
	deployments := scope{resource: schema.GroupResource{Group: "apps", Resource: "deployments"}, namespace: "apps"}
	for _, tc := range []struct {
		what  string
		opts  metav1.ListOptions
		scope scope
		want  string
	}{
		{"the one Deployment", metav1.ListOptions{}, deployments, "metadata.name=web"},
		{"two ConfigMaps in one namespace", metav1.ListOptions{}, scope{resource: schema.GroupResource{Resource: "configmaps"}, namespace: "apps"}, ""},
		{"the one ConfigMap of another namespace", metav1.ListOptions{}, scope{resource: schema.GroupResource{Resource: "configmaps"}, namespace: "other"}, "metadata.name=three"},
		{"a cluster-scoped object", metav1.ListOptions{}, scope{resource: schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}}, "metadata.name=reader"},
		{"a kind the release does not have", metav1.ListOptions{}, scope{resource: schema.GroupResource{Group: "apps", Resource: "replicasets"}, namespace: "apps"}, ""},
		{"a list by label", metav1.ListOptions{LabelSelector: "app=web"}, deployments, ""},
	} {
		if got := scoped(tc.opts, names, tc.scope).FieldSelector; got != tc.want {
			t.Errorf("%s: field selector %q, want %q", tc.what, got, tc.want)
		}
	}
}
