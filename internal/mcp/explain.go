package mcp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weirhq/weir/internal/control"
	"github.com/weirhq/weir/internal/diagnose"
	"github.com/weirhq/weir/internal/trace"
)

type explainInput struct {
	Kind      string `json:"kind,omitempty" jsonschema:"Kustomization, HelmRelease, GitRepository, OCIRepository, HelmRepository or HelmChart (or ks, hr, git, oci, helm, chart); empty with no name: every object that is not Ready"`
	Name      string `json:"name,omitempty" jsonschema:"the object's name; empty: every object of the namespace that is not Ready"`
	Namespace string `json:"namespace,omitempty" jsonschema:"the namespace; default flux-system; with no name and no namespace, every namespace"`
}

// explanation is what explain_not_ready returns for one object.
type explanation struct {
	Object string `json:"object"`
	State  string `json:"state"`
	// Text is the whole explanation in one paragraph, as `weir why` says it.
	Text string `json:"text"`
	// Chain leads from the object to what holds it, the cause last.
	Chain []chainStep `json:"chain"`
	Fix   string      `json:"fix,omitempty"`
}

type chainStep struct {
	Object   string `json:"object"`
	Relation string `json:"relation,omitempty"`
	State    string `json:"state"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	Since    string `json:"since,omitempty"`
}

func explainNotReady(s *Server) {
	addTool(s, tool{
		Name: "explain_not_ready",
		Description: "Explain why a Flux object is not Ready and what to do: follows its dependsOn chain and its source " +
			"(sourceRef, chartRef, a HelmRelease's HelmChart and that chart's repository) to the object that holds it, " +
			"with that object's reason, message and since when, and the fix (deploy key, YAML, values, sops-age, path). " +
			"Use it first when something is not Ready or stuck; without a name it explains every object that is not Ready.",
	}, func(ctx context.Context, in explainInput) (any, error) {
		ns := in.Namespace
		if ns == "" && in.Name != "" {
			ns = "flux-system"
		}
		g, err := diagnose.Load(ctx, s.opts.Client, "")
		if err != nil {
			return nil, err
		}
		now := time.Now()
		var refs []diagnose.Ref
		if in.Name == "" {
			for _, r := range g.NotReady() {
				if ns == "" || r.Namespace == ns {
					refs = append(refs, r)
				}
			}
		} else {
			k, ok := control.LookupKind(in.Kind)
			if !ok {
				k, ok = control.LookupKind("source " + in.Kind)
			}
			if !ok {
				return nil, fmt.Errorf("unknown kind %q: use Kustomization, HelmRelease or a source kind", in.Kind)
			}
			ref := diagnose.Ref{Kind: k.Name, Namespace: ns, Name: in.Name}
			if _, ok := g.Get(ref); !ok {
				return nil, fmt.Errorf("%s not found", ref)
			}
			refs = []diagnose.Ref{ref}
		}
		out := []explanation{}
		for _, r := range refs {
			e := g.Explain(r)
			x := explanation{Object: r.String(), State: string(e.Subject.State), Text: e.Text(now), Fix: e.Fix, Chain: []chainStep{}}
			for _, st := range append([]diagnose.Step{e.Subject}, e.Path...) {
				c := chainStep{Object: st.Ref.String(), Relation: st.Relation, State: string(st.State), Reason: st.Reason, Message: st.Message}
				if !st.Since.IsZero() {
					c.Since = st.Since.UTC().Format(time.RFC3339)
				}
				x.Chain = append(x.Chain, c)
			}
			out = append(out, x)
		}
		return map[string]any{"explanations": out}, nil
	})
}

type traceInput struct {
	Kind       string `json:"kind" jsonschema:"the object's kind or resource, as kubectl takes it: Deployment, deploy, configmaps"`
	Name       string `json:"name" jsonschema:"the object's name"`
	Namespace  string `json:"namespace,omitempty" jsonschema:"the object's namespace (ignored for cluster-scoped kinds); default flux-system"`
	APIVersion string `json:"api_version,omitempty" jsonschema:"the kind's API version, such as apps/v1, when the kind is ambiguous"`
}

func traceFluxObject(s *Server) {
	addTool(s, tool{
		Name: "trace_flux_object",
		Description: "Find which Kustomization or HelmRelease manages a Kubernetes object (a Deployment, a ConfigMap, a CRD...) " +
			"and where it came from: the manager, its source, the revision applied and the Git commit or OCI digest, as " +
			"`flux trace` does. Use it to answer 'where is this object defined in Git?' or 'who would overwrite my change?'.",
	}, func(ctx context.Context, in traceInput) (any, error) {
		ns := in.Namespace
		if ns == "" {
			ns = "flux-system"
		}
		obj, err := trace.Resolve(ctx, s.opts.Client, in.Kind, in.APIVersion, ns, in.Name)
		if err != nil {
			return nil, err
		}
		res, err := trace.Trace(ctx, s.opts.Client, obj)
		if errors.Is(err, trace.ErrNotManaged) {
			return map[string]any{"managed": false, "message": err.Error()}, nil
		}
		if err != nil {
			return nil, err
		}
		links := []map[string]string{}
		for _, l := range res.Links {
			m := map[string]string{}
			for _, f := range l.Fields {
				m[f.Name] = f.Value
			}
			m["kind"] = l.Kind
			links = append(links, m)
		}
		warnings := res.Warnings
		if warnings == nil {
			warnings = []string{}
		}
		return map[string]any{"managed": true, "chain": links, "warnings": warnings}, nil
	})
}
