package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weirhq/weir/internal/loopback"
)

// engine is a GitOps engine under measure, run as its own processes.
type engine interface {
	name() string
	// start runs the engine against the cluster of kubeconfig, keeping its
	// files and logs under state. It returns the processes, the addresses
	// of their readiness probes and those of their metrics endpoints.
	start(ctx context.Context, kubeconfig, state string) ([]*exec.Cmd, []string, []string, error)
}

// weirEngine is `weir controller`, built from this checkout. With shards
// > 0 it is a main process (objects without a shard key) and one process
// per shard key shard0, shard1, ..., as a sharded install runs.
type weirEngine struct {
	bin    string
	shards int
}

func (weirEngine) name() string { return "weir" }

func (w weirEngine) start(ctx context.Context, kubeconfig, state string) ([]*exec.Cmd, []string, []string, error) {
	selectors := []string{""}
	if w.shards > 0 {
		selectors[0] = "!sharding.fluxcd.io/key"
		for k := range w.shards {
			selectors = append(selectors, fmt.Sprintf("sharding.fluxcd.io/key in (shard%d)", k))
		}
	}
	var procs []*exec.Cmd
	var probes, metrics []string
	for i, sel := range selectors {
		health, metric := "127.0.0.1:"+freePort(), "127.0.0.1:"+freePort()
		args := []string{"controller",
			"--kubeconfig", kubeconfig,
			"--storage-path", filepath.Join(state, fmt.Sprintf("weir-artifacts-%d", i)),
			"--storage-addr", "127.0.0.1:" + freePort(),
			"--metrics-addr", metric, "--health-addr", health, "--receiver-addr", "0",
			"--pprof-addr", pprofFor(metric)}
		if sel != "" {
			args = append(args, "--watch-label-selector", sel)
		}
		name := "weir"
		if i > 0 {
			name = fmt.Sprintf("weir-shard%d", i-1)
		}
		p, err := spawn(ctx, state, name, nil, w.bin, args...)
		if err != nil {
			stopAll(procs)
			return nil, nil, nil, err
		}
		procs, probes, metrics = append(procs, p), append(probes, health), append(metrics, metric)
	}
	return procs, probes, metrics, nil
}

// pprofAddrs maps the metrics address of each weir process started to the
// address of its profiles.
var pprofAddrs sync.Map

// pprofFor picks the profiling address of the weir process whose metrics
// are at metricsAddr.
func pprofFor(metricsAddr string) string {
	a := "127.0.0.1:" + freePort()
	pprofAddrs.Store(metricsAddr, a)
	return a
}

// fluxEngine is Flux's source-controller, kustomize-controller and
// helm-controller (the example's apps are HelmReleases), with the flags of
// a stock install (no notification-controller: events go nowhere, as
// --events-addr is left out).
type fluxEngine struct{ source, kustomize, helm string }

func fluxFrom(dir string) (fluxEngine, error) {
	f := fluxEngine{
		source:    filepath.Join(dir, "source-controller"),
		kustomize: filepath.Join(dir, "kustomize-controller"),
		helm:      filepath.Join(dir, "helm-controller"),
	}
	for _, b := range []string{f.source, f.kustomize, f.helm} {
		if fi, err := os.Stat(b); err != nil || fi.Mode()&0o111 == 0 {
			return f, fmt.Errorf("-peers: %s is not an executable file", b)
		}
	}
	return f, nil
}

func (fluxEngine) name() string { return "Flux" }

func (f fluxEngine) start(ctx context.Context, kubeconfig, state string) ([]*exec.Cmd, []string, []string, error) {
	env := []string{"RUNTIME_NAMESPACE=flux-system"}
	storage := "127.0.0.1:" + freePort()
	health := []string{"127.0.0.1:" + freePort(), "127.0.0.1:" + freePort(), "127.0.0.1:" + freePort()}
	metrics := []string{"127.0.0.1:" + freePort(), "127.0.0.1:" + freePort(), "127.0.0.1:" + freePort()}
	src, err := spawn(ctx, state, "source-controller", env, f.source,
		"--kubeconfig="+kubeconfig, "--watch-all-namespaces=true", "--log-level=info", "--log-encoding=json",
		"--enable-leader-election", "--storage-path="+filepath.Join(state, "flux-artifacts"),
		"--storage-addr="+storage, "--storage-adv-addr="+storage,
		"--metrics-addr="+metrics[0], "--health-addr="+health[0])
	if err != nil {
		return nil, nil, nil, err
	}
	ks, err := spawn(ctx, state, "kustomize-controller", env, f.kustomize,
		"--kubeconfig="+kubeconfig, "--watch-all-namespaces=true", "--log-level=info", "--log-encoding=json",
		"--enable-leader-election",
		"--metrics-addr="+metrics[1], "--health-addr="+health[1])
	if err != nil {
		stopAll([]*exec.Cmd{src})
		return nil, nil, nil, err
	}
	helm, err := spawn(ctx, state, "helm-controller", env, f.helm,
		"--kubeconfig="+kubeconfig, "--watch-all-namespaces=true", "--log-level=info", "--log-encoding=json",
		"--enable-leader-election",
		"--metrics-addr="+metrics[2], "--health-addr="+health[2])
	if err != nil {
		stopAll([]*exec.Cmd{src, ks})
		return nil, nil, nil, err
	}
	return []*exec.Cmd{src, ks, helm}, health, metrics, nil
}

// spawn starts one process with its output in state/<name>.log.
func spawn(ctx context.Context, state, name string, env []string, bin string, args ...string) (*exec.Cmd, error) {
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(state, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return cmd, nil
}

// stopAll stops the processes and waits for them.
func stopAll(procs []*exec.Cmd) {
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
}

// waitReady waits until every probe answers /readyz with 200.
func waitReady(ctx context.Context, probes []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, p := range probes {
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p+"/readyz", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s was not ready within %s", p, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// freePort finds a free loopback port below the ephemeral range, so that an
// engine restarted by a scenario gets its port back.
func freePort() string {
	port, err := loopback.FreePort()
	if err != nil {
		return "0"
	}
	return strconv.Itoa(port)
}

// usage reads a process's peak and current RSS and its CPU time so far.
func usage(pid int) (peak, rss int64, cpu time.Duration) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmHWM:":
				peak = kb << 10
			case "VmRSS:":
				rss = kb << 10
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command name, which is in parentheses.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 13 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
			}
		}
	}
	return peak, rss, cpu
}
