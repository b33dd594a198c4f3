package mcp

import (
	"context"
	"errors"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

type suspendInput struct {
	Kind      string `json:"kind" jsonschema:"the kind: Kustomization, HelmRelease, GitRepository, OCIRepository, HelmRepository, HelmChart, FluxInstance, Receiver, Alert, Provider (or ks, hr, git, oci)"`
	Name      string `json:"name" jsonschema:"the name of the object"`
	Namespace string `json:"namespace,omitempty" jsonschema:"its namespace; empty: flux-system"`
}

type suspended struct {
	resource
	// RequestedAt is the reconcile requested when resuming.
	RequestedAt string `json:"requested_at,omitempty"`
}

func suspendFluxReconciliation(s *Server) {
	addTool(s, tool{
		Name: "suspend_flux_reconciliation",
		Description: "Suspend a Flux object (spec.suspend, as `flux suspend`): weir stops reconciling it and leaves what it " +
			"applied as it is until resumed. Use it to hold a release during an incident or a manual change.",
		Writes: true,
	}, func(ctx context.Context, in suspendInput) (any, error) {
		return s.setSuspend(ctx, in, true)
	})
}

func resumeFluxReconciliation(s *Server) {
	addTool(s, tool{
		Name: "resume_flux_reconciliation",
		Description: "Resume a suspended Flux object (as `flux resume`) and request a reconcile at once, so that it catches " +
			"up with its source. Use it when get_flux_resources shows an object suspended that should run.",
		Writes: true,
	}, func(ctx context.Context, in suspendInput) (any, error) {
		return s.setSuspend(ctx, in, false)
	})
}

func (s *Server) setSuspend(ctx context.Context, in suspendInput, suspend bool) (any, error) {
	k, err := lookupKind(in.Kind)
	if err != nil {
		return nil, err
	}
	if in.Name == "" {
		return nil, errors.New("name is required")
	}
	key := client.ObjectKey{Namespace: orDefault(in.Namespace), Name: in.Name}
	obj, err := control.Get(ctx, s.opts.Client, k, key)
	if err != nil {
		return nil, err
	}
	requestedAt, err := control.SetSuspend(ctx, s.opts.Client, obj, suspend)
	if err != nil {
		return nil, err
	}
	if obj, err = control.Get(ctx, s.opts.Client, k, key); err != nil {
		return nil, err
	}
	return suspended{resource: summarize(k, obj), RequestedAt: requestedAt}, nil
}
