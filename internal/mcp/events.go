package mcp

import (
	"context"
	"strings"
	"time"

	"github.com/weirhq/weir/internal/events"
)

type eventsInput struct {
	Kind      string `json:"kind,omitempty" jsonschema:"only the events about objects of this kind, such as Kustomization"`
	Name      string `json:"name,omitempty" jsonschema:"only the events about objects of this name"`
	Namespace string `json:"namespace,omitempty" jsonschema:"the namespace; empty: every namespace"`
	Type      string `json:"type,omitempty" jsonschema:"Normal or Warning; empty: both"`
	Limit     int    `json:"limit,omitempty" jsonschema:"the most recent events to return; 0: 100"`
}

type event struct {
	LastSeen  time.Time `json:"last_seen"`
	Type      string    `json:"type"`
	Reason    string    `json:"reason"`
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Message   string    `json:"message"`
	Count     int32     `json:"count,omitempty"`
}

type eventsOutput struct {
	Events []event `json:"events"`
}

func getFluxEvents(s *Server) {
	addTool(s, tool{
		Name: "get_flux_events",
		Description: "List the Kubernetes Events recorded about Flux objects, oldest first: what each reconcile did " +
			"(revisions fetched, objects applied, Helm upgrades) and why it failed (Warning events). Use it to learn the " +
			"history of an object that is not Ready, after get_flux_resources.",
	}, func(ctx context.Context, in eventsInput) (any, error) {
		kind := in.Kind
		if kind != "" {
			k, err := lookupKind(kind)
			if err != nil {
				return nil, err
			}
			kind = k.Name
		}
		list, err := events.List(ctx, s.opts.Client, events.Query{Namespace: in.Namespace, Kind: kind, Name: in.Name, Type: in.Type, FluxOnly: true})
		if err != nil {
			return nil, err
		}
		limit := in.Limit
		if limit <= 0 {
			limit = 100
		}
		if len(list) > limit {
			list = list[len(list)-limit:]
		}
		out := eventsOutput{Events: []event{}}
		for _, e := range list {
			o := e.InvolvedObject
			out.Events = append(out.Events, event{
				LastSeen: events.LastSeen(e), Type: e.Type, Reason: e.Reason,
				Kind: o.Kind, Namespace: o.Namespace, Name: o.Name,
				Message: strings.TrimSpace(e.Message), Count: e.Count,
			})
		}
		return out, nil
	})
}
