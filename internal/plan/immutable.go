package plan

import (
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// immutableFields are, per group/Kind, the fields the API server refuses
// to change on an existing object (its validation says "field is
// immutable"): changing one means deleting and creating the object.
var immutableFields = map[string][]string{
	"apps/Deployment":  {"spec.selector"},
	"apps/ReplicaSet":  {"spec.selector"},
	"apps/DaemonSet":   {"spec.selector"},
	"apps/StatefulSet": {"spec.selector", "spec.serviceName", "spec.volumeClaimTemplates", "spec.podManagementPolicy"},
	"batch/Job":        {"spec.selector", "spec.template", "spec.completionMode"},
	"/Service":         {"spec.clusterIP"},
	"/PersistentVolumeClaim": {
		"spec.accessModes", "spec.selector", "spec.storageClassName", "spec.volumeMode",
		"spec.volumeName", "spec.dataSource", "spec.dataSourceRef",
	},
	"/PersistentVolume":                             {"spec.csi.driver", "spec.csi.volumeHandle", "spec.nfs", "spec.hostPath", "spec.local"},
	"storage.k8s.io/StorageClass":                   {"provisioner", "parameters", "reclaimPolicy", "volumeBindingMode"},
	"storage.k8s.io/CSIDriver":                      {"spec.attachRequired"},
	"rbac.authorization.k8s.io/RoleBinding":         {"roleRef"},
	"rbac.authorization.k8s.io/ClusterRoleBinding":  {"roleRef"},
	"apiextensions.k8s.io/CustomResourceDefinition": {"spec.scope"},
}

// ImmutableChanges lists the fields changed between before and after that
// the API server does not let change in place: the selectors of
// workloads, a StatefulSet's claim templates, a Job's template, a
// Service's clusterIP, a PersistentVolumeClaim's spec but its size, a
// StorageClass's parameters, a binding's roleRef; and the data of a
// ConfigMap or Secret marked immutable.
func ImmutableChanges(before, after *unstructured.Unstructured) []string {
	gvk := after.GroupVersionKind()
	var changed []string
	for _, f := range immutableFields[gvk.Group+"/"+gvk.Kind] {
		path := strings.Split(f, ".")
		b, bok, _ := unstructured.NestedFieldNoCopy(before.Object, path...)
		a, aok, _ := unstructured.NestedFieldNoCopy(after.Object, path...)
		if gvk.Kind == "Service" && f == "spec.clusterIP" && (!bok || !aok || b == "" || a == "") {
			continue // allocated by the server when left out
		}
		if bok != aok || !reflect.DeepEqual(b, a) {
			changed = append(changed, f)
		}
	}
	if gvk.Group == "" && (gvk.Kind == "ConfigMap" || gvk.Kind == "Secret") {
		if immutable, _, _ := unstructured.NestedBool(before.Object, "immutable"); immutable {
			for _, f := range []string{"data", "binaryData", "stringData"} {
				b, _, _ := unstructured.NestedFieldNoCopy(before.Object, f)
				a, _, _ := unstructured.NestedFieldNoCopy(after.Object, f)
				if !reflect.DeepEqual(b, a) {
					changed = append(changed, f+" (immutable: true)")
				}
			}
		}
	}
	return changed
}
