package mcp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/weirhq/weir/internal/mcp"
)

// TestWeirMCPOverStdio runs `weir mcp` as an assistant does, a child
// process spoken to over its stdin and stdout: anything but the protocol
// on its stdout would break the session.
func TestWeirMCPOverStdio(t *testing.T) {
	argv, err := json.Marshal([]string{"mcp", "--read-only", "--kubeconfig", env.Cluster.Kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+string(argv))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil).Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connecting to weir mcp: %v\nstderr:\n%s", err, &stderr)
	}
	defer cs.Close()
	got := toolNames(t, cs)
	slices.Sort(got)
	if !slices.Equal(got, readTools) {
		t.Errorf("tools %v, want the read-only ones %v", got, readTools)
	}
	r := call(t, cs, "get_flux_resources", map[string]any{"kind": "Kustomization", "namespace": "kube-system"})
	if r.isError || !strings.Contains(r.text, `"resources":[]`) {
		t.Errorf("get_flux_resources: %+v\nstderr:\n%s", r, &stderr)
	}
	cs.Close()
	if !strings.Contains(stderr.String(), `"tool":"get_flux_resources"`) {
		t.Errorf("the call was not logged to stderr:\n%s", &stderr)
	}
}

// bearer adds a token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestTheHTTPTransportRequiresItsToken serves on loopback with a token, as
// any other address must: without the token a request gets 401.
func TestTheHTTPTransportRequiresItsToken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := mcp.New(mcp.Options{Client: env.Client, ReadOnly: true, Logger: testLogger(t, nil)})
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- srv.ServeHTTP(ctx, mcp.HTTPOptions{Addr: "127.0.0.1:0", Token: "t0ken-for-the-test"}, func(url string) { urls <- url })
	}()
	var url string
	select {
	case url = <-urls:
	case err := <-done:
		t.Fatal(err)
	}

	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}`
	for name, header := range map[string]string{"no token": "", "a wrong token": "Bearer nope"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(init))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %s, want 401", name, resp.Status)
		}
	}

	transport := &sdk.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearer{"t0ken-for-the-test"}}}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil).Connect(ctx, transport, nil)
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	defer cs.Close()
	if got := toolNames(t, cs); len(got) != len(readTools) {
		t.Errorf("tools over HTTP: %v", got)
	}
	cs.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("the server ended with %v", err)
	}
}

func TestAnAddressOffLoopbackNeedsAToken(t *testing.T) {
	srv := mcp.New(mcp.Options{Client: env.Client, Logger: testLogger(t, nil)})
	err := srv.ServeHTTP(context.Background(), mcp.HTTPOptions{Addr: "0.0.0.0:0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") || !strings.Contains(err.Error(), "WEIR_MCP_TOKEN") {
		t.Fatalf("got %v", err)
	}
}
