package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// freeAddr is a loopback address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestControllerServesTheDashboard runs `weir controller --ui-addr` as a
// user would, confined to an empty namespace so that it does not act on
// other tests' objects: the dashboard answers on loopback without a
// token; bound to all interfaces it refuses to start without one, and with
// one it refuses requests that lack it.
func TestControllerServesTheDashboard(t *testing.T) {
	ns := env.Namespace(t)
	addr := freeAddr(t)
	common := []string{"controller", "-n", ns, "--watch-all-namespaces=false", "--leader-elect=false",
		"--metrics-addr", "0", "--health-addr", "0", "--receiver-addr", "0", "--storage-addr", "127.0.0.1:0", "--storage-path", t.TempDir(),
		"--kubeconfig", env.Cluster.Kubeconfig}

	start := func(extra []string, envVars ...string) (*exec.Cmd, *bytes.Buffer) {
		argv, err := json.Marshal(append(append([]string{}, common...), extra...))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(append(os.Environ(), mainArgsEnv+"="+string(argv)), envVars...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, &out
	}
	get := func(url, token string) (int, string) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, string(b)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v", url, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	_, out := start([]string{"--ui-addr", addr})
	if code, body := get("http://"+addr+"/", ""); code != http.StatusOK || !strings.Contains(body, "weir") {
		t.Errorf("the dashboard on loopback answered %d:\n%.300s\n(controller output:\n%s)", code, body, out)
	}

	// All interfaces without a token: refused before anything is served.
	code, stdout, stderr := runWeir(t, append(append([]string{}, common[:len(common)-2]...), "--ui-addr", "0.0.0.0:0")...)
	if code == 0 || !strings.Contains(stdout+stderr, "token") {
		t.Errorf("--ui-addr 0.0.0.0:0 without a token exited %d:\n%s%s", code, stdout, stderr)
	}

	open := strings.Replace(freeAddr(t), "127.0.0.1", "0.0.0.0", 1)
	_, out = start([]string{"--ui-addr", open}, "WEIR_UI_TOKEN=s3cret")
	url := "http://" + strings.Replace(open, "0.0.0.0", "127.0.0.1", 1) + "/"
	if code, _ := get(url, ""); code != http.StatusUnauthorized {
		t.Errorf("without the token the dashboard answered %d, want 401 (output:\n%s)", code, out)
	}
	if code, _ := get(url, "s3cret"); code != http.StatusOK {
		t.Errorf("with the token from WEIR_UI_TOKEN the dashboard answered %d, want 200 (output:\n%s)", code, out)
	}
}
