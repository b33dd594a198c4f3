package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fluxcd/pkg/runtime/logger"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/weirhq/weir/internal/logs"
	"github.com/weirhq/weir/internal/mcp"
	"github.com/weirhq/weir/internal/version"
)

func newMCPCommand(g *globalOptions) *cobra.Command {
	var (
		transport, addr, tokenFile, stateDir string
		readOnly                             bool
		waitTimeout                          time.Duration
		logOpts                              = logger.Options{LogEncoding: "json", LogLevel: "info"}
	)
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve weir's tools to AI assistants (Model Context Protocol)",
		Long: "mcp runs an MCP server that lets an assistant list Flux objects and their status, read their events,\n" +
			"weir's logs and the dependency graph, build and diff Kustomizations, and reconcile, suspend and\n" +
			"resume objects (not with --read-only). It talks to the cluster of --kubeconfig and --context.\n" +
			"--transport stdio (the default) is what an assistant starts as a child process; --transport http\n" +
			"serves streamable HTTP on --addr, loopback by default. Any other address needs a bearer token\n" +
			"(--token-file, or $WEIR_MCP_TOKEN); once given, the token is required on every address.\n" +
			"Secret values are never returned. Each call is logged to stderr. See docs/mcp.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, err := mcpToken(tokenFile)
			if err != nil {
				return err
			}
			c, err := objectClient(g)
			if err != nil {
				return err
			}
			src, err := logs.SourceFor(stateDir, g.kubeconfig, func() (kubernetes.Interface, error) {
				cfg, err := g.restConfig()
				if err != nil {
					return nil, err
				}
				return kubernetes.NewForConfig(cfg)
			})
			if err != nil {
				return err
			}
			log := logger.NewLogger(logOpts).WithName("mcp")
			srv := mcp.New(mcp.Options{Client: c, Logs: src, ReadOnly: readOnly, Logger: log, Version: version.Version, WaitTimeout: waitTimeout})
			switch transport {
			case "stdio":
				log.Info("serving MCP over stdio", "readOnly", readOnly)
				return srv.ServeStdio(cmd.Context())
			case "http":
				return srv.ServeHTTP(cmd.Context(), mcp.HTTPOptions{Addr: addr, Token: token}, func(url string) {
					log.Info("serving MCP over streamable HTTP", "url", url, "readOnly", readOnly, "token", token != "")
				})
			}
			return fmt.Errorf("--transport %q: use stdio or http", transport)
		},
	}
	f := cmd.Flags()
	f.StringVar(&transport, "transport", "stdio", "stdio, or http for streamable HTTP on --addr")
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address of the HTTP transport; other than loopback, a token is required")
	f.StringVar(&tokenFile, "token-file", "", "file holding the bearer token the HTTP transport requires (default: $WEIR_MCP_TOKEN)")
	f.BoolVar(&readOnly, "read-only", false, "offer only the tools that read: no reconcile, suspend or resume")
	f.DurationVar(&waitTimeout, "wait-timeout", 5*time.Minute, "how long the reconcile tools wait for the outcome")
	f.StringVar(&stateDir, "state-dir", "", "read weir's log from the `weir up` run with this state folder (default: found from the kubeconfig, else the cluster's weir pods)")
	logOpts.BindFlags(f)
	return cmd
}

// mcpToken reads the bearer token of the HTTP transport from file, else
// from $WEIR_MCP_TOKEN (which keeps it out of the process list).
func mcpToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv("WEIR_MCP_TOKEN")), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading --token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", errors.New("--token-file is empty")
	}
	return token, nil
}
