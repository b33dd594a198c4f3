package mcp

import (
	"context"
	"errors"
	"fmt"
)

type buildOutput struct {
	Kustomization string `json:"kustomization"`
	// From says what was rendered: the source's artifact and revision,
	// or a local folder.
	From    string `json:"from"`
	Objects int    `json:"objects"`
	// YAML is the rendered objects, Secret values masked.
	YAML string `json:"yaml"`
	// Unresolved lists what an offline render left as written.
	Unresolved []string `json:"unresolved,omitempty"`
}

func buildKustomization(s *Server) {
	addTool(s, tool{
		Name: "build_kustomization",
		Description: "Render what a Kustomization applies, without applying anything (as `weir build ks`): from its " +
			"source's current artifact with the values its cluster substitutes, or, with path, from a local folder of the " +
			"repository offline. Returns the objects as YAML, Secret values masked. Use it to see what a Kustomization " +
			"produces or why its build fails.",
	}, func(ctx context.Context, in renderInput) (any, error) {
		if in.Name == "" {
			return nil, errors.New("name is required")
		}
		var r *rendered
		var err error
		if in.Path != "" {
			r, err = s.renderFromPath(ctx, in)
		} else {
			r, err = s.renderFromSource(ctx, in, true)
		}
		if err != nil {
			return nil, err
		}
		text, err := r.toYAML()
		if err != nil {
			return nil, err
		}
		out := buildOutput{
			Kustomization: fmt.Sprintf("%s/%s", r.ks.Namespace, r.ks.Name),
			From:          r.from, Objects: len(r.objects), YAML: text,
			Unresolved: r.report.Unresolved,
		}
		for _, u := range r.report.Unavailable {
			out.Unresolved = append(out.Unresolved, "substituteFrom "+u.Error())
		}
		return out, nil
	})
}
