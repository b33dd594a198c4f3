package depgraph

import (
	"cmp"
	"strings"
)

// Key names a node of the graph: an object of Kind ("Kustomization" or
// "HelmRelease") called Name in Namespace.
type Key struct {
	Kind, Namespace, Name string
}

// String returns the key as "Kind/namespace/name", for example
// "Kustomization/flux-system/apps".
func (k Key) String() string {
	return k.Kind + "/" + k.Namespace + "/" + k.Name
}

// compareKeys orders keys by Kind, then Namespace, then Name. Every sorted
// result of this package uses it.
func compareKeys(a, b Key) int {
	return cmp.Or(
		strings.Compare(a.Kind, b.Kind),
		strings.Compare(a.Namespace, b.Namespace),
		strings.Compare(a.Name, b.Name),
	)
}

// FormatCycle writes a cycle as "a -> b -> c -> a", naming each node the way
// Flux users write a dependsOn entry: just the name when the whole cycle is
// in one namespace, "namespace/name" when it crosses namespaces. When the
// cycle mixes Kustomizations and HelmReleases each node is also prefixed
// with its kind ("HelmRelease/cilium", "HelmRelease/kube-system/cilium"), so
// the shortest unambiguous form is always used. An empty cycle gives "".
func FormatCycle(cycle []Key) string {
	if len(cycle) == 0 {
		return ""
	}
	sameKind, sameNamespace := true, true
	for _, k := range cycle[1:] {
		sameKind = sameKind && k.Kind == cycle[0].Kind
		sameNamespace = sameNamespace && k.Namespace == cycle[0].Namespace
	}
	var b strings.Builder
	for i, k := range cycle {
		if i > 0 {
			b.WriteString(" -> ")
		}
		if !sameKind {
			b.WriteString(k.Kind + "/")
		}
		if !sameNamespace {
			b.WriteString(k.Namespace + "/")
		}
		b.WriteString(k.Name)
	}
	return b.String()
}
