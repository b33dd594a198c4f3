// Command buildks measures `weir build ks` per call, as a user runs it (a
// process per call), on a generated home-ops repository of about 2,300
// YAML files, and `flux build ks --dry-run` on the same calls when a flux
// binary is given or on PATH.
//
//	go run ./bench/buildks                 # 20 calls of each
//	go run ./bench/buildks -calls 50 -flux /usr/local/bin/flux
//	go run ./bench/buildks -weir /tmp/weir # an already built weir
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/weirhq/weir/internal/repo/repotest"
)

func main() {
	calls := flag.Int("calls", 20, "how many calls to time, each of another app")
	weir := flag.String("weir", "", "the weir binary (default: built from this checkout)")
	flux := flag.String("flux", "", "the flux binary (default: flux on PATH, if any)")
	keep := flag.String("keep", "", "generate the repository into this folder and keep it (for profiling)")
	flag.Parse()
	if err := run(*calls, *weir, *flux, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "buildks:", err)
		os.Exit(1)
	}
}

const namespaces, apps = 62, 7

func run(calls int, weir, flux, keep string) error {
	tmp, err := os.MkdirTemp("", "weir-buildks-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "repo")
	if keep != "" {
		root = keep
	}
	if err := repotest.HomeOps(root, namespaces, apps); err != nil {
		return err
	}
	if weir == "" {
		weir = filepath.Join(tmp, "weir")
		build := exec.Command("go", "build", "-o", weir, "./cmd/weir")
		// As released (make build, the image): static, which keeps the
		// binary's resident pages some 50 MiB smaller (see the Makefile).
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building weir: %w", err)
		}
	}
	if flux == "" {
		flux, _ = exec.LookPath("flux")
	}
	fmt.Printf("repository: %d YAML files (%d apps)\n", namespaces*(apps*5+2)+6, namespaces*apps)
	// The index trusts no file changed in the last 2 seconds (see
	// internal/repo/index.go): time it on a repository checked out before.
	time.Sleep(2100 * time.Millisecond)
	index := filepath.Join(tmp, "index")
	for _, mode := range []struct{ name, env string }{
		{"without the index (WEIR_REPO_INDEX=off)", "off"},
		{"with the index of the calls before", index},
	} {
		took, err := timeCalls(calls, func(n, a int) *exec.Cmd {
			c := exec.Command(weir, "build", "ks", repotest.Name(n, a), "--path", filepath.Join(root, repotest.Path(n, a)), "--repo", root)
			c.Env = append(os.Environ(), "WEIR_REPO_INDEX="+mode.env)
			return c
		})
		if err != nil {
			return fmt.Errorf("weir: %w", err)
		}
		fmt.Printf("weir build ks %s: %v a call (%d calls)\n", mode.name, took.Round(time.Millisecond), calls)
	}
	if flux == "" {
		fmt.Println("flux build ks: no flux binary (pass -flux)")
		return nil
	}
	took, err := timeCalls(calls, func(n, a int) *exec.Cmd {
		return exec.Command(flux, "build", "ks", repotest.Name(n, a), "--path", filepath.Join(root, repotest.Path(n, a)),
			"--kustomization-file", filepath.Join(root, repotest.KsFile(n, a)), "--dry-run")
	})
	if err != nil {
		return fmt.Errorf("flux: %w", err)
	}
	fmt.Printf("flux build ks --dry-run: %v a call (%d calls)\n", took.Round(time.Millisecond), calls)
	return nil
}

// timeCalls runs one warm-up call (which also writes the index, when one
// is kept), then calls more, and returns the mean
// wall time of those.
func timeCalls(calls int, cmd func(n, a int) *exec.Cmd) (time.Duration, error) {
	var total time.Duration
	for i := -1; i < calls; i++ {
		j := i + 1
		c := cmd(j%namespaces, j%apps)
		start := time.Now()
		if out, err := c.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s: %w\n%s", c, err, out)
		}
		if i >= 0 {
			total += time.Since(start)
		}
	}
	return total / time.Duration(calls), nil
}
