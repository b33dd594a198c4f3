// Command buildks measures `weir build ks` per call, as a user runs it (a
// process per call), and `flux build ks --dry-run` on the same calls when
// a flux binary is given or on PATH. The repository is a generated
// home-ops one of about 2,300 YAML files, or, with -repo, one of yours:
// each call builds another of the Flux Kustomizations its clusters apply
// from the repository itself (those both tools build without an error).
//
//	go run ./bench/buildks                 # 20 calls of each
//	go run ./bench/buildks -calls 50 -flux /usr/local/bin/flux
//	go run ./bench/buildks -weir /tmp/weir # an already built weir
//	go run ./bench/buildks -repo ~/src/home-ops -flux flux
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/weirhq/weir/internal/repo"
	"github.com/weirhq/weir/internal/repo/repotest"
)

func main() {
	calls := flag.Int("calls", 20, "how many calls to time, each of another Kustomization")
	weir := flag.String("weir", "", "the weir binary (default: built from this checkout)")
	flux := flag.String("flux", "", "the flux binary (default: flux on PATH, if any)")
	keep := flag.String("keep", "", "generate the repository into this folder and keep it (for profiling)")
	repoDir := flag.String("repo", "", "time the Kustomizations of this repository instead of a generated one")
	flag.Parse()
	if err := run(*calls, *weir, *flux, *keep, *repoDir); err != nil {
		fmt.Fprintln(os.Stderr, "buildks:", err)
		os.Exit(1)
	}
}

const namespaces, apps = 62, 7

// target is one Kustomization a call builds: its name, the file that
// declares it and its spec.path, relative to the root.
type target struct{ name, file, path string }

func run(calls int, weir, flux, keep, repoDir string) error {
	tmp, err := os.MkdirTemp("", "weir-buildks-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
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
	root := filepath.Join(tmp, "repo")
	var targets []target
	if repoDir != "" {
		if root, err = filepath.Abs(repoDir); err != nil {
			return err
		}
		if targets, err = repositoryTargets(root, weir, flux); err != nil {
			return err
		}
		tools := "weir builds"
		if flux != "" {
			tools = "weir and flux build"
		}
		fmt.Printf("repository %s: %d Kustomizations that %s\n", root, len(targets), tools)
	} else {
		if keep != "" {
			root = keep
		}
		if err := repotest.HomeOps(root, namespaces, apps); err != nil {
			return err
		}
		for i := range namespaces * apps {
			n, a := i%namespaces, i%apps
			targets = append(targets, target{repotest.Name(n, a), repotest.KsFile(n, a), repotest.Path(n, a)})
		}
		fmt.Printf("repository: %d YAML files (%d apps)\n", namespaces*(apps*5+2)+6, namespaces*apps)
	}
	// The index trusts no file changed in the last 2 seconds (see
	// internal/repo/index.go): time it on a repository checked out before.
	time.Sleep(2100 * time.Millisecond)
	index := filepath.Join(tmp, "index")
	for _, mode := range []struct{ name, env string }{
		{"without the index (WEIR_REPO_INDEX=off)", "off"},
		{"with the index of the calls before", index},
	} {
		mean, median, err := timeCalls(calls, targets, func(t target) *exec.Cmd {
			c := weirCmd(weir, root, t)
			c.Env = append(os.Environ(), "WEIR_REPO_INDEX="+mode.env)
			return c
		})
		if err != nil {
			return fmt.Errorf("weir: %w", err)
		}
		fmt.Printf("weir build ks %s: %v a call, median %v (%d calls)\n", mode.name, mean.Round(time.Millisecond), median.Round(time.Millisecond), calls)
	}
	if flux == "" {
		fmt.Println("flux build ks: no flux binary (pass -flux)")
		return nil
	}
	mean, median, err := timeCalls(calls, targets, func(t target) *exec.Cmd { return fluxCmd(flux, root, t) })
	if err != nil {
		return fmt.Errorf("flux: %w", err)
	}
	fmt.Printf("flux build ks --dry-run: %v a call, median %v (%d calls)\n", mean.Round(time.Millisecond), median.Round(time.Millisecond), calls)
	return nil
}

// weirCmd is the weir call that builds t.
func weirCmd(weir, root string, t target) *exec.Cmd {
	return exec.Command(weir, "build", "ks", t.name, "--path", filepath.Join(root, t.path), "--repo", root,
		"--kustomization-file", filepath.Join(root, t.file))
}

// fluxCmd is the flux call that builds t.
func fluxCmd(flux, root string, t target) *exec.Cmd {
	return exec.Command(flux, "build", "ks", t.name, "--path", filepath.Join(root, t.path),
		"--kustomization-file", filepath.Join(root, t.file), "--dry-run")
}

// repositoryTargets lists the Flux Kustomizations the repository's
// clusters apply from the repository itself, once each, keeping those
// that weir (and flux, when given) build without an error.
func repositoryTargets(root, weir, flux string) ([]target, error) {
	r, err := repo.Open(root)
	if err != nil {
		return nil, err
	}
	var out []target
	for _, c := range r.Clusters() {
		for _, o := range c.Objects {
			if o.GetKind() != "Kustomization" || !strings.HasPrefix(o.GetAPIVersion(), "kustomize.toolkit.fluxcd.io/") {
				continue
			}
			p, _, _ := unstructured.NestedString(o.Object, "spec", "path")
			p = path.Clean(strings.TrimPrefix(p, "/"))
			t := target{o.GetName(), o.File, p}
			if strings.Contains(p, "${") || p == ".." || strings.HasPrefix(p, "../") || slices.Contains(out, t) {
				continue
			}
			if exec.Command(weir, "build", "ks", t.name, "--path", filepath.Join(root, t.path), "--repo", root, "--kustomization-file", filepath.Join(root, t.file)).Run() != nil {
				continue
			}
			if flux != "" && fluxCmd(flux, root, t).Run() != nil {
				continue
			}
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no Kustomization of %s builds", root)
	}
	return out, nil
}

// timeCalls runs one warm-up call (which also writes the index, when one
// is kept), then calls more, each building the next target, and returns
// the mean and the median wall time of those.
func timeCalls(calls int, targets []target, cmd func(target) *exec.Cmd) (mean, median time.Duration, err error) {
	var took []time.Duration
	var total time.Duration
	for i := -1; i < calls; i++ {
		c := cmd(targets[(i+1)%len(targets)])
		start := time.Now()
		if out, err := c.CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("%s: %w\n%s", c, err, out)
		}
		if i >= 0 {
			took = append(took, time.Since(start))
			total += took[len(took)-1]
		}
	}
	slices.Sort(took)
	return total / time.Duration(calls), took[len(took)/2], nil
}
