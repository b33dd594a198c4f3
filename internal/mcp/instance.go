package mcp

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	controlplanev1 "github.com/weirhq/weir/api/controlplane/v1"
)

type instanceInput struct {
	Namespace string `json:"namespace,omitempty" jsonschema:"the namespace of the FluxInstance; empty: flux-system"`
}

type instanceOutput struct {
	Instance map[string]any `json:"instance"`
	Report   map[string]any `json:"report,omitempty"`
}

func getFluxInstance(s *Server) {
	addTool(s, tool{
		Name: "get_flux_instance",
		Description: "Get the FluxInstance that installs and configures weir (distribution, components, cluster settings, " +
			"sync source) with its status, and the FluxReport: which components run, how many objects of each kind " +
			"are Ready or failing, and the sync's state. Use it for an overview of the installation or to check its version and health.",
	}, func(ctx context.Context, in instanceInput) (any, error) {
		ns := orDefault(in.Namespace)
		var list controlplanev1.FluxInstanceList
		if err := s.opts.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing the FluxInstances of namespace %s: %w", ns, err)
		}
		if len(list.Items) == 0 {
			return nil, fmt.Errorf("there is no FluxInstance in namespace %s: weir was installed without one (weir install), or in another namespace", ns)
		}
		inst := &list.Items[0]
		out := instanceOutput{}
		var err error
		if out.Instance, err = plain(inst, controlplanev1.GroupVersion.String(), controlplanev1.FluxInstanceKind); err != nil {
			return nil, err
		}
		var reports controlplanev1.FluxReportList
		if err := s.opts.Client.List(ctx, &reports, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing the FluxReports of namespace %s: %w", ns, err)
		}
		if len(reports.Items) > 0 {
			if out.Report, err = plain(&reports.Items[0], controlplanev1.GroupVersion.String(), controlplanev1.FluxReportKind); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
}

// plain is obj as JSON fields, with its apiVersion and kind and without
// managedFields, which only the API server reads.
func plain(obj client.Object, apiVersion, kind string) (map[string]any, error) {
	obj.SetManagedFields(nil)
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("reading %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
	}
	u["apiVersion"], u["kind"] = apiVersion, kind
	return u, nil
}
