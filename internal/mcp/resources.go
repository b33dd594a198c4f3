package mcp

import (
	"context"
	"fmt"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"

	"github.com/weirhq/weir/internal/control"
)

type resourcesInput struct {
	Kind      string `json:"kind,omitempty" jsonschema:"the kind, such as Kustomization, HelmRelease, GitRepository, OCIRepository, HelmRepository, HelmChart, FluxInstance, Receiver, Alert, Provider (or ks, hr); empty: every kind"`
	Namespace string `json:"namespace,omitempty" jsonschema:"the namespace; empty: every namespace"`
	Name      string `json:"name,omitempty" jsonschema:"only the objects of this name"`
	Status    string `json:"status,omitempty" jsonschema:"ready or not-ready to keep only those; empty: both"`
}

type resourcesOutput struct {
	Resources []resource `json:"resources"`
}

func getFluxResources(s *Server) {
	addTool(s, tool{
		Name: "get_flux_resources",
		Description: "List Flux objects (sources, Kustomizations, HelmReleases, FluxInstances, Receivers, Alerts, Providers) " +
			"with their Ready status, reason, message, last revision and whether they are suspended. Use it first to see " +
			"what the cluster runs and what is failing (status: not-ready), then dig into one object with get_flux_events " +
			"and get_flux_logs.",
	}, func(ctx context.Context, in resourcesInput) (any, error) {
		var keep func(resource) bool
		switch strings.ToLower(in.Status) {
		case "":
			keep = func(resource) bool { return true }
		case "ready":
			keep = func(r resource) bool { return r.Ready == "True" || r.Ready == "n/a" }
		case "not-ready", "notready", "not_ready":
			keep = func(r resource) bool { return r.Ready != "True" && r.Ready != "n/a" }
		default:
			return nil, fmt.Errorf("status %q: use ready or not-ready", in.Status)
		}
		kinds := control.Kinds()
		if in.Kind != "" {
			k, err := lookupKind(in.Kind)
			if err != nil {
				return nil, err
			}
			kinds = []control.Kind{k}
		}
		out := resourcesOutput{Resources: []resource{}}
		for _, k := range kinds {
			objs, err := control.List(ctx, s.opts.Client, k, in.Namespace)
			if apimeta.IsNoMatchError(err) && in.Kind == "" {
				continue // a CRD this cluster does not have
			}
			if err != nil {
				return nil, err
			}
			for _, obj := range objs {
				if in.Name != "" && obj.GetName() != in.Name {
					continue
				}
				if r := summarize(k, obj); keep(r) {
					out.Resources = append(out.Resources, r)
				}
			}
		}
		return out, nil
	})
}
