// Command weirtest measures `weir test` on a whole repository, as a pull
// request check runs it (one process): on the example repository (its
// charts from examples/charts, no network) and on a generated home-ops
// repository of 434 apps (Kustomizations and HelmReleases whose OCI charts
// have no local copy, so their charts are reported, not rendered). It
// prints the median wall time and the peak RSS of each.
//
//	go run ./bench/weirtest              # 5 runs of each
//	go run ./bench/weirtest -runs 9 -weir /tmp/weir
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/weirhq/weir/internal/repo/repotest"
)

func main() {
	runs := flag.Int("runs", 5, "how many runs to time on each repository")
	weir := flag.String("weir", "", "the weir binary (default: built from this checkout)")
	flag.Parse()
	if err := run(*runs, *weir); err != nil {
		fmt.Fprintln(os.Stderr, "weirtest:", err)
		os.Exit(1)
	}
}

func run(runs int, weir string) error {
	tmp, err := os.MkdirTemp("", "weir-weirtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if weir == "" {
		weir = filepath.Join(tmp, "weir")
		build := exec.Command("go", "build", "-o", weir, "./cmd/weir")
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
		median, peak, err := timeRuns(runs, weir, r.path)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		fmt.Printf("weir test on %s: median %v, peak RSS %d MiB (%d runs)\n", r.name, median.Round(time.Millisecond), peak>>20, runs)
	}
	return nil
}

// timeRuns runs `weir test PATH` once to warm the file cache, then runs
// times, and returns the median wall time and the largest peak RSS. Exit
// code 1 (a check that failed) still counts: it is a finished run.
func timeRuns(runs int, weir, path string) (time.Duration, int64, error) {
	var times []time.Duration
	var peak int64
	for i := -1; i < runs; i++ {
		cmd := exec.Command(weir, "test", path)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
			return 0, 0, fmt.Errorf("%s: %w\n%s", cmd, err, out)
		}
		if i < 0 {
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
