// Command weirtest measures `weir test` on a whole repository, as a pull
// request check runs it (one process): on the example repository (its
// charts from examples/charts, no network); on a generated home-ops
// repository of 434 apps (Kustomizations and HelmReleases whose OCI charts
// have no local copy, so their charts are reported, not rendered); and on
// a generated repository of 300 Kustomizations and 300 HelmReleases whose
// 10 charts are served by an OCI registry on loopback, with a cold chart
// cache (empty at each run) and a warm one. It prints the median wall
// time and the peak RSS of each, and the registry requests of a run.
//
//	go run ./bench/weirtest              # 5 runs of each
//	go run ./bench/weirtest -runs 9 -weir /tmp/weir
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/weirhq/weir/internal/ociregistry"
	"github.com/weirhq/weir/internal/repo/repotest"
)

func main() {
	runs := flag.Int("runs", 5, "how many runs to time on each repository")
	weir := flag.String("weir", "", "the weir binary (default: built from this checkout)")
	flag.BoolVar(&show, "show", false, "print the tail of each repository's first run, to see what weir test reported")
	flag.Parse()
	if err := run(*runs, *weir); err != nil {
		fmt.Fprintln(os.Stderr, "weirtest:", err)
		os.Exit(1)
	}
}

// show prints the tail of each repository's first run.
var show bool

func run(runs int, weir string) error {
	tmp, err := os.MkdirTemp("", "weir-weirtest-")
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
	homeOps := filepath.Join(tmp, "home-ops")
	if err := repotest.HomeOps(homeOps, 62, 7); err != nil {
		return err
	}
	for _, r := range []struct{ name, path string }{
		{"the example (examples/cluster, 14 Kustomizations, 13 HelmReleases with charts)", filepath.Join("examples", "cluster")},
		{"a generated home-ops repository (434 apps, 2,300 files)", homeOps},
	} {
		median, peak, err := timeRuns(runs, weir, r.path, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		fmt.Printf("weir test on %s: median %v, peak RSS %d MiB (%d runs)\n", r.name, median.Round(time.Millisecond), peak>>20, runs)
	}
	return chartsRuns(runs, weir, tmp)
}

// chartsRuns times weir test on 300 Kustomizations and 300 HelmReleases
// whose charts a loopback registry serves, with a cold and a warm cache.
func chartsRuns(runs int, weir, tmp string) error {
	ctx := context.Background()
	reg, err := ociregistry.Start(ctx, ociregistry.Options{})
	if err != nil {
		return err
	}
	defer reg.Stop()
	const charts = 10
	for i := range charts {
		dir := filepath.Join(tmp, "chart-sources", fmt.Sprintf("chart-%d", i)) // not "charts" beside the repository, which weir test would read as local copies
		if err := copyChart(filepath.Join("examples", "charts", "app"), dir, fmt.Sprintf("chart-%d", i)); err != nil {
			return err
		}
		if _, err := reg.PushChart(ctx, fmt.Sprintf("charts/chart-%d", i), "1.0.0", dir); err != nil {
			return fmt.Errorf("pushing chart %d: %w", i, err)
		}
	}
	root := filepath.Join(tmp, "fleet")
	err = repotest.HomeOpsWith(root, 30, 10, repotest.Options{
		Insecure: true,
		Chart:    func(n, a int) string { return reg.URL(fmt.Sprintf("charts/chart-%d", (n*10+a)%charts)) },
	})
	if err != nil {
		return err
	}
	name := "300 Kustomizations and 300 HelmReleases, 10 charts on a loopback registry"
	cache := filepath.Join(tmp, "chart-cache")
	before := reg.Counts()
	median, peak, err := timeRuns(runs, weir, root, func() []string {
		_ = os.RemoveAll(cache)
		return []string{"--chart-cache", cache}
	})
	if err != nil {
		return fmt.Errorf("%s, cold cache: %w", name, err)
	}
	cold := reg.Counts()
	fmt.Printf("weir test on %s, cold cache: median %v, peak RSS %d MiB (%d runs); a run: %s\n", name, median.Round(time.Millisecond), peak>>20, runs, perRun(before, cold, runs+1))
	median, peak, err = timeRuns(runs, weir, root, func() []string { return []string{"--chart-cache", cache} })
	if err != nil {
		return fmt.Errorf("%s, warm cache: %w", name, err)
	}
	fmt.Printf("weir test on %s, warm cache: median %v, peak RSS %d MiB (%d runs); a run: %s\n", name, median.Round(time.Millisecond), peak>>20, runs, perRun(cold, reg.Counts(), runs+1))
	return nil
}

// perRun says the registry requests of one run, from the counts before
// and after n runs.
func perRun(before, after ociregistry.Counts, n int) string {
	return fmt.Sprintf("%d manifest HEADs, %d manifest GETs, %d blob GETs",
		(after.ManifestHeads-before.ManifestHeads)/int64(n), (after.ManifestGets-before.ManifestGets)/int64(n), (after.BlobGets-before.BlobGets)/int64(n))
}

// copyChart copies the chart folder src to dst under another name.
func copyChart(src, dst, name string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "Chart.yaml" {
			b = []byte(strings.Replace(string(b), "name: app", "name: "+name, 1))
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// timeRuns runs `weir test PATH` (with extra's arguments, asked before
// each run) once to warm the file cache, then runs times, and returns the median wall time and the largest peak RSS. Exit
// code 1 (a check that failed) still counts: it is a finished run.
func timeRuns(runs int, weir, path string, extra func() []string) (time.Duration, int64, error) {
	var times []time.Duration
	var peak int64
	for i := -1; i < runs; i++ {
		args := []string{"test", path}
		if extra != nil {
			args = append(args, extra()...)
		}
		cmd := exec.Command(weir, args...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
			return 0, 0, fmt.Errorf("%s: %w\n%s", cmd, err, out)
		}
		if i < 0 {
			if show {
				lines := strings.Split(strings.TrimSpace(string(out)), "\n")
				fmt.Println(strings.Join(lines[max(0, len(lines)-4):], "\n"))
			}
			continue
		}
		times = append(times, took)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			peak = max(peak, ru.Maxrss*1024)
		}
	}
	slices.Sort(times)
	return times[len(times)/2], peak, nil
}
