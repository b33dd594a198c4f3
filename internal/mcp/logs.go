package mcp

import (
	"context"
	"errors"
	"time"

	"github.com/weirhq/weir/internal/logs"
)

type logsInput struct {
	Kind      string `json:"kind,omitempty" jsonschema:"only the entries about objects of this kind, such as Kustomization"`
	Name      string `json:"name,omitempty" jsonschema:"only the entries about objects of this name"`
	Namespace string `json:"namespace,omitempty" jsonschema:"only the entries about objects of this namespace (and the controllers' own); empty: every namespace"`
	Level     string `json:"level,omitempty" jsonschema:"debug, info or error: only the entries at this level or above"`
	Since     string `json:"since,omitempty" jsonschema:"only the entries of this last while, as a Go duration such as 15m or 2h"`
	Tail      int    `json:"tail,omitempty" jsonschema:"the last entries to return; 0: 100"`
}

type logsOutput struct {
	// Lines are the entries, one readable line each: time, level,
	// Kind/namespace.name, message.
	Lines []string `json:"lines"`
}

func getFluxLogs(s *Server) {
	addTool(s, tool{
		Name: "get_flux_logs",
		Description: "Read weir's controller logs (the weir Deployment's pods, or the log of a local `weir up` run), one " +
			"line per entry: time, level, Kind/namespace.name, message and error. Use it when events and the Ready " +
			"message do not explain a failure, e.g. with kind, name and level error.",
	}, func(ctx context.Context, in logsInput) (any, error) {
		if s.opts.Logs == nil {
			return nil, errors.New("this server was started without access to weir's logs")
		}
		q := logs.Query{Filter: logs.Filter{Kind: in.Kind, Name: in.Name, Namespace: in.Namespace, Level: in.Level}, Tail: in.Tail}
		if q.Kind != "" {
			if k, err := lookupKind(q.Kind); err == nil {
				q.Kind = k.Name
			}
		}
		if in.Since != "" {
			d, err := time.ParseDuration(in.Since)
			if err != nil {
				return nil, errors.New("since: use a duration such as 15m or 2h")
			}
			q.Since = time.Now().Add(-d)
		}
		if q.Tail <= 0 {
			q.Tail = 100
		}
		out := logsOutput{Lines: []string{}}
		err := logs.Read(ctx, s.opts.Logs, q, func(e logs.Entry) error {
			out.Lines = append(out.Lines, e.Format())
			return nil
		})
		return out, err
	})
}
