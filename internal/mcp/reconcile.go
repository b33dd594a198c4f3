package mcp

import (
	"context"
	"errors"
	"fmt"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

// reconcileInput is the input of reconcile_flux_kustomization and
// reconcile_flux_helmrelease.
type reconcileInput struct {
	Name       string `json:"name" jsonschema:"the name of the object"`
	Namespace  string `json:"namespace,omitempty" jsonschema:"its namespace; empty: flux-system"`
	WithSource bool   `json:"with_source,omitempty" jsonschema:"reconcile its source first (the GitRepository, OCIRepository or HelmChart it renders from), so that a new commit or chart is fetched"`
	Wait       *bool  `json:"wait,omitempty" jsonschema:"wait for the reconcile and return its outcome (the default); false returns once it is requested"`
}

type sourceInput struct {
	Kind      string `json:"kind" jsonschema:"the source kind: git, oci, helm, chart, or GitRepository, OCIRepository, HelmRepository, HelmChart"`
	Name      string `json:"name" jsonschema:"the name of the source"`
	Namespace string `json:"namespace,omitempty" jsonschema:"its namespace; empty: flux-system"`
	Wait      *bool  `json:"wait,omitempty" jsonschema:"wait for the reconcile and return its outcome (the default); false returns once it is requested"`
}

// reconciled is the outcome of a reconcile tool.
type reconciled struct {
	resource
	// RequestedAt is the reconcile.fluxcd.io/requestedAt token set.
	RequestedAt string `json:"requested_at"`
	// Outcome says what the reconcile achieved, in the flux CLI's words:
	// "applied revision main@sha1:…"; "requested" when not waited for.
	Outcome string `json:"outcome"`
	// Source is the outcome of the source's reconcile, with with_source.
	Source *reconciled `json:"source,omitempty"`
}

func reconcileFluxKustomization(s *Server) {
	addTool(s, tool{
		Name: "reconcile_flux_kustomization",
		Description: "Ask weir to reconcile a Kustomization now (as `flux reconcile ks`) and, by default, wait and return " +
			"the applied revision or the Ready failure message. Use with_source to fetch the latest commit first. Use it after " +
			"a fix was pushed, or to retry a failed apply.",
		Writes: true,
	}, func(ctx context.Context, in reconcileInput) (any, error) {
		return s.reconcileObject(ctx, kustomizev1.KustomizationKind, in)
	})
}

func reconcileFluxHelmRelease(s *Server) {
	addTool(s, tool{
		Name: "reconcile_flux_helmrelease",
		Description: "Ask weir to reconcile a HelmRelease now (as `flux reconcile hr`) and, by default, wait and return the " +
			"installed chart version or the Ready failure message. Use with_source to fetch the chart first. Use it after " +
			"changing values or a chart, or to retry a failed install or upgrade.",
		Writes: true,
	}, func(ctx context.Context, in reconcileInput) (any, error) {
		return s.reconcileObject(ctx, helmv2.HelmReleaseKind, in)
	})
}

func reconcileFluxSource(s *Server) {
	addTool(s, tool{
		Name: "reconcile_flux_source",
		Description: "Ask weir to fetch a source now (GitRepository, OCIRepository, HelmRepository or HelmChart, as " +
			"`flux reconcile source`) and, by default, wait and return the fetched revision or the Ready failure message. " +
			"Use it when a new commit, tag or chart should be picked up without waiting for the interval.",
		Writes: true,
	}, func(ctx context.Context, in sourceInput) (any, error) {
		k, err := lookupKind(in.Kind)
		if err != nil {
			return nil, err
		}
		if k.Group != "source" {
			return nil, fmt.Errorf("%s is not a source kind: use git, oci, helm or chart", k.Name)
		}
		return s.reconcile(ctx, k, client.ObjectKey{Namespace: orDefault(in.Namespace), Name: in.Name}, in.Wait == nil || *in.Wait)
	})
}

// reconcileObject reconciles a Kustomization or a HelmRelease, its source
// first with WithSource.
func (s *Server) reconcileObject(ctx context.Context, kind string, in reconcileInput) (any, error) {
	k, _ := control.LookupKind(kind)
	key := client.ObjectKey{Namespace: orDefault(in.Namespace), Name: in.Name}
	wait := in.Wait == nil || *in.Wait
	var src *reconciled
	if in.WithSource {
		obj, err := control.Get(ctx, s.opts.Client, k, key)
		if err != nil {
			return nil, err
		}
		srcKind, srcKey, err := sourceOf(obj)
		if err != nil {
			return nil, err
		}
		// The source is always waited for: the object's reconcile must
		// see what it fetched.
		if src, err = s.reconcile(ctx, srcKind, srcKey, true); err != nil {
			return nil, fmt.Errorf("reconciling the source: %w", err)
		}
	}
	out, err := s.reconcile(ctx, k, key, wait)
	if err != nil {
		return nil, err
	}
	out.Source = src
	return out, nil
}

// reconcile requests a reconcile of the object of kind k at key and, with
// wait, waits for it: a failed reconcile is an error holding its Ready
// message.
func (s *Server) reconcile(ctx context.Context, k control.Kind, key client.ObjectKey, wait bool) (*reconciled, error) {
	if key.Name == "" {
		return nil, errors.New("name is required")
	}
	obj, err := control.Get(ctx, s.opts.Client, k, key)
	if err != nil {
		return nil, err
	}
	requestedAt, err := control.RequestReconcile(ctx, s.opts.Client, obj)
	if err != nil {
		return nil, err
	}
	if !wait {
		return &reconciled{resource: summarize(k, obj), RequestedAt: requestedAt, Outcome: "requested"}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.WaitTimeout)
	defer cancel()
	obj, err = control.WaitReconciled(ctx, s.opts.Client, key, k, requestedAt)
	if err != nil {
		return nil, err
	}
	return &reconciled{resource: summarize(k, obj), RequestedAt: requestedAt, Outcome: k.Outcome(obj)}, nil
}

// sourceOf is the source a Kustomization or a HelmRelease renders from.
func sourceOf(obj control.Object) (control.Kind, client.ObjectKey, error) {
	var kind string
	key := client.ObjectKey{Namespace: obj.GetNamespace()}
	switch o := obj.(type) {
	case *kustomizev1.Kustomization:
		kind, key.Name = o.Spec.SourceRef.Kind, o.Spec.SourceRef.Name
		if o.Spec.SourceRef.Namespace != "" {
			key.Namespace = o.Spec.SourceRef.Namespace
		}
	case *helmv2.HelmRelease:
		switch {
		case o.Spec.ChartRef != nil:
			kind, key.Name = o.Spec.ChartRef.Kind, o.Spec.ChartRef.Name
			if o.Spec.ChartRef.Namespace != "" {
				key.Namespace = o.Spec.ChartRef.Namespace
			}
		case o.Spec.Chart != nil:
			// The HelmChart helm-controller makes of spec.chart.
			kind, key = sourcev1.HelmChartKind, client.ObjectKey{Namespace: o.Spec.Chart.GetNamespace(o.Namespace), Name: o.GetHelmChartName()}
		}
	}
	if kind == "" {
		return control.Kind{}, key, fmt.Errorf("%s/%s names no source", obj.GetNamespace(), obj.GetName())
	}
	k, ok := control.LookupKind(kind)
	if !ok {
		return control.Kind{}, key, fmt.Errorf("the source kind %s of %s/%s is not one weir reconciles", kind, obj.GetNamespace(), obj.GetName())
	}
	return k, key, nil
}
