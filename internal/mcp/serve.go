package mcp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// ServeStdio serves one assistant over stdin and stdout, as assistants
// run a local MCP server, until it hangs up or ctx ends. Nothing else may
// write to stdout meanwhile: logs go to stderr.
func (s *Server) ServeStdio(ctx context.Context) error {
	return s.sdk.Run(ctx, &sdk.StdioTransport{})
}

// HTTPOptions configure the streamable HTTP transport.
type HTTPOptions struct {
	// Addr is the address to listen on, such as 127.0.0.1:8080.
	Addr string
	// Token, when set, is required on every request as
	// "Authorization: Bearer <token>". It is required for any address
	// other than loopback.
	Token string
}

// ServeHTTP serves the MCP endpoint at / over streamable HTTP until ctx
// ends, calling listening with its URL once it accepts connections. It
// refuses an address other than loopback without a token: anyone who
// reaches the port could otherwise act on the cluster with weir's
// credentials.
func (s *Server) ServeHTTP(ctx context.Context, o HTTPOptions, listening func(url string)) error {
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", o.Addr, err)
	}
	if o.Token == "" && !isLoopbackHost(host) {
		return fmt.Errorf("--addr %s is not a loopback address: give a bearer token with --token-file or $WEIR_MCP_TOKEN", o.Addr)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Addr, err)
	}
	srv := &http.Server{Handler: s.Handler(o.Token), ReadHeaderTimeout: 10 * time.Second}
	if listening != nil {
		listening("http://" + ln.Addr().String() + "/")
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// Handler is the streamable HTTP endpoint. With a token, a request without
// "Authorization: Bearer <token>" gets 401 and never reaches the server.
// Without one, the SDK's DNS rebinding protection refuses requests to a
// loopback address that name another host.
func (s *Server) Handler(token string) http.Handler {
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s.sdk }, nil)
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="weir mcp"`)
			http.Error(w, "a bearer token is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// isLoopbackHost reports whether host names this machine only: localhost
// or an address in 127.0.0.0/8 or ::1. An empty host (every interface) is
// not loopback.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}
