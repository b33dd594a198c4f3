package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/go-logr/logr"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/logs"
)

// Options configure a Server.
type Options struct {
	// Client reads and writes the cluster's objects.
	Client client.Client
	// Logs is where get_flux_logs reads weir's log (see logs.SourceFor).
	Logs logs.Source
	// ReadOnly leaves out every tool that writes: reconcile, suspend,
	// resume.
	ReadOnly bool
	// Logger records every tool call; the zero value records nothing.
	Logger logr.Logger
	// Version is the server version the assistant is told.
	Version string
	// WaitTimeout bounds how long a tool waits for a reconcile; 0 means
	// five minutes.
	WaitTimeout time.Duration
}

// Server is weir's MCP server.
type Server struct {
	opts Options
	sdk  *sdk.Server
}

// tools is every tool the server offers, each added by its own function.
var tools = []func(*Server){
	getFluxInstance,
	getFluxResources,
	getFluxEvents,
	getFluxLogs,
	getDependencyGraph,
	explainNotReady,
	traceFluxObject,
	buildKustomization,
	diffKustomization,
	reconcileFluxKustomization,
	reconcileFluxHelmRelease,
	reconcileFluxSource,
	suspendFluxReconciliation,
	resumeFluxReconciliation,
}

// New returns a server offering weir's tools.
func New(opts Options) *Server {
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = 5 * time.Minute
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	s := &Server{opts: opts, sdk: sdk.NewServer(&sdk.Implementation{Name: "weir", Title: "weir GitOps engine", Version: version}, &sdk.ServerOptions{
		Instructions: "weir runs Flux's APIs (GitRepository, OCIRepository, HelmRepository, HelmChart, Kustomization, " +
			"HelmRelease, FluxInstance) in a Kubernetes cluster. Start with get_flux_resources to see what is not Ready, " +
			"then get_flux_events and get_flux_logs for why; get_dependency_graph shows what waits on what.",
	})}
	for _, add := range tools {
		add(s)
	}
	return s
}

// SDK returns the SDK's server, to connect it to a transport of the
// caller's choice (tests use in-memory transports).
func (s *Server) SDK() *sdk.Server { return s.sdk }

// tool describes one tool to addTool.
type tool struct {
	// Name is the tool's name, as assistants call it.
	Name string
	// Description tells a model what the tool does and when to use it.
	Description string
	// Writes marks a tool that changes the cluster: left out when the
	// server is read-only.
	Writes bool
}

// addTool adds a tool whose arguments are In (its JSON schema inferred
// from In's fields, described by their jsonschema tags) and whose result,
// the JSON of what handle returns, is given both as structured content
// and as text. An error, or a panic, is a tool error the model reads.
func addTool[In any](s *Server, t tool, handle func(ctx context.Context, in In) (any, error)) {
	if t.Writes && s.opts.ReadOnly {
		return
	}
	annotations := &sdk.ToolAnnotations{ReadOnlyHint: !t.Writes, OpenWorldHint: new(false)}
	if t.Writes {
		annotations.DestructiveHint = new(false)
		annotations.IdempotentHint = true
	}
	sdk.AddTool(s.sdk, &sdk.Tool{Name: t.Name, Description: t.Description, Annotations: annotations},
		func(ctx context.Context, req *sdk.CallToolRequest, in In) (*sdk.CallToolResult, any, error) {
			start := time.Now()
			out, err := s.safely(t.Name, func() (any, error) { return handle(ctx, in) })
			log := s.opts.Logger.WithValues("tool", t.Name, "arguments", loggedArguments(req.Params.Arguments), "duration", time.Since(start).Round(time.Millisecond).String())
			if err != nil {
				log.Info("tool call failed", "outcome", "error", "error", err.Error())
				return nil, nil, err
			}
			log.Info("tool call", "outcome", "ok")
			return nil, out, nil
		})
}

// safely runs a tool's handler, turning a panic into an error: one
// faulty tool must not take the server, and the assistant, down with it.
func (s *Server) safely(name string, handle func() (any, error)) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.opts.Logger.Error(fmt.Errorf("%v", r), "tool panicked", "tool", name, "stack", string(debug.Stack()))
			out, err = nil, fmt.Errorf("%s failed unexpectedly: %v", name, r)
		}
	}()
	return handle()
}

// secretArgument matches the names of arguments whose values are not
// logged, should a tool ever take one.
var secretArgument = regexp.MustCompile(`(?i)token|password|secret|key|credential`)

// loggedArguments is a call's arguments as logged: as sent, but for the
// values of arguments named like secrets.
func loggedArguments(raw any) string {
	var b []byte
	switch a := raw.(type) {
	case json.RawMessage:
		b = a
	default:
		b, _ = json.Marshal(a)
	}
	var args map[string]any
	if err := json.Unmarshal(b, &args); err != nil {
		return "(not a JSON object)"
	}
	for k := range args {
		if secretArgument.MatchString(k) {
			args[k] = "*****"
		}
	}
	out, _ := json.Marshal(args)
	return string(out)
}
