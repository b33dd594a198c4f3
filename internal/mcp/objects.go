package mcp

import (
	"fmt"
	"strings"

	"github.com/weirhq/weir/internal/control"
)

// defaultNamespace is where tools look when a call names no namespace:
// where Flux's own objects live.
const defaultNamespace = "flux-system"

func orDefault(namespace string) string {
	if namespace == "" {
		return defaultNamespace
	}
	return namespace
}

// lookupKind resolves a kind as a model may name it: the API kind
// ("Kustomization"), the CLI's word ("ks", "helmrelease", "source git").
func lookupKind(name string) (control.Kind, error) {
	if k, ok := control.LookupKind(name); ok {
		return k, nil
	}
	if k, ok := control.LookupKind("source " + name); ok {
		return k, nil
	}
	var names []string
	for _, k := range control.Kinds() {
		names = append(names, k.Name)
	}
	return control.Kind{}, fmt.Errorf("unknown kind %q: use one of %s", name, strings.Join(names, ", "))
}

// resource is what the tools say of a Flux object.
type resource struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Ready is the Ready condition's status: True, False or Unknown, or
	// n/a for the kinds without status (Alert, Provider).
	Ready     string `json:"ready"`
	Reason    string `json:"reason,omitempty"`
	Message   string `json:"message,omitempty"`
	Revision  string `json:"revision,omitempty"`
	Suspended bool   `json:"suspended"`
}

func summarize(k control.Kind, obj control.Object) resource {
	st := control.StatusOf(obj)
	r := resource{
		Kind: k.Name, Namespace: obj.GetNamespace(), Name: obj.GetName(),
		Ready: st.Ready, Reason: st.Reason, Message: st.Message, Revision: st.Revision, Suspended: st.Suspended,
	}
	if k.Static {
		r.Ready, r.Reason, r.Message = "n/a", "", "has no status: it takes effect as applied"
	}
	return r
}
