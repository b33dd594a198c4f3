// Command gatewayapi copies the Gateway API's standard CRDs from the
// sigs.k8s.io/gateway-api module (downloaded through the Go module proxy)
// into internal/gatewayapi/crds, where weir up embeds them, so that the
// HTTPRoutes of a repository (the seed's receiver-route.yaml) are
// validated by a real API server. `make generate` runs it:
//
//	go run ./tools/gatewayapi internal/gatewayapi/crds
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// version is the Gateway API release whose CRDs weir up installs.
const version = "v1.6.3"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gatewayapi OUT_FOLDER")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gatewayapi:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	cmd := exec.Command("go", "mod", "download", "-json", "sigs.k8s.io/gateway-api@"+version)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("downloading sigs.k8s.io/gateway-api@%s: %w", version, err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(b, &mod); err != nil {
		return fmt.Errorf("reading go mod download's answer: %w", err)
	}
	if mod.Dir == "" {
		return fmt.Errorf("sigs.k8s.io/gateway-api@%s: %s", version, mod.Error)
	}
	src := filepath.Join(mod.Dir, "config", "crd", "standard")
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(out, "*.yaml"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	for _, e := range entries {
		name := e.Name()
		// The CRDs only; the safe-upgrades ValidatingAdmissionPolicy is
		// not one.
		if !strings.HasPrefix(name, "gateway.networking.k8s.io_") || strings.Contains(name, "_vap_") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
