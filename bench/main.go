// Command bench measures weir on the local control plane: the time from
// creating the root Kustomization to every Kustomization Ready, for the
// example repository (the seed's 7-level chain, each app a HelmRelease
// whose Kustomization waits for it) and for generated repositories of N
// independent apps and of N independent HelmReleases, against floors
// measured on the same control plane in the same run, with the controllers' peak RSS, RSS when idle and CPU time.
//
//	go run ./bench                                  # example, flat-ks-200, flat-hr-200
//	go run ./bench -scenarios flat-ks-1000,flat-hr-1000
//	go run ./bench -scenarios mixed-home-ops,restart-1000,idle-1000,churn-1000
//	go run ./bench -scenarios flat-ks-1000 -shards 2  # weir as 3 processes
//	go run ./bench -peers DIR                       # also Flux's controllers from DIR
//
// The scenarios are listed in scenarios.go.
//
// Every engine runs as its own processes on a fresh control plane: weir as
// `weir controller`, built from this checkout; Flux as source-controller,
// kustomize-controller and helm-controller, when -peers names a folder
// holding them, with the flags of a stock install. As `weir up` does, the
// harness serves the repository from an in-process Git server, pushes the
// charts found beside the example (its ../charts) to an in-process OCI
// registry and writes that registry's address into the ConfigMap
// flux-system/weir-up, which the example's Kustomizations substitute into
// their OCIRepository URLs. The floors are:
//
//   - chain: the example's HelmReleases installed level by level with the
//     Helm SDK, as many releases of its app chart on each level as the
//     example has (those of a level at once, with up to 4 workers),
//     waiting for their objects as the controllers do; the bare
//     Deployment floor of earlier runs (one Deployment times the levels)
//     is printed beside it;
//   - flat: the harness itself applying every app's objects with as many
//     workers as the engines use (4) and waiting until every Deployment is
//     Available;
//   - HelmReleases: the harness itself installing the N releases with the
//     Helm SDK, with 4 workers;
//   - both: the two above at once, as one engine runs both kinds at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-git/go-git/v5"
	"github.com/go-logr/logr"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/gatewayapi"
	"github.com/weirhq/weir/internal/gitserver"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/localcluster"
	"github.com/weirhq/weir/internal/ociregistry"
	"github.com/weirhq/weir/internal/up"
)

// workers is how many objects of a kind the engines reconcile at once
// (weir's --concurrent default, and Flux's stock --concurrent).
const workers = 4

func main() {
	var o options
	flag.StringVar(&o.example, "example", "examples/cluster", "the example repository")
	flag.StringVar(&o.scenarios, "scenarios", "example,flat-ks-200,flat-hr-200", "comma-separated scenarios: "+strings.Join(scenarioNames, ", "))
	flag.StringVar(&o.peers, "peers", "", "folder holding Flux's source-controller, kustomize-controller and helm-controller binaries, run side by side with weir")
	flag.DurationVar(&o.settle, "idle", 10*time.Second, "how long the engine sits idle after converging before its RSS is read")
	flag.DurationVar(&o.idleFor, "idle-for", 10*time.Minute, "how long the idle scenario leaves the converged engine alone")
	flag.IntVar(&o.shards, "shards", 0, "run weir as a main process and this many shards (--watch-label-selector), the flat-ks apps spread over them")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of weir's first -profile-for of each scenario's convergence to FILE.<scenario>[.<process>] (weir only)")
	flag.DurationVar(&o.profileFor, "profile-for", 30*time.Second, "how long -cpuprofile samples")
	flag.StringVar(&o.heapProfile, "heapprofile", "", "write a heap profile of weir once each scenario has converged and settled to FILE.<scenario>[.<process>] (weir only)")
	flag.StringVar(&o.keepLogs, "keep-logs", "", "copy the engines' logs of each scenario to DIR/<scenario>.<engine>.<process>.log before their state is removed")
	generateOnly := flag.String("generate", "", "only write the scenarios' repositories under this folder, one folder each, and exit")
	flag.Parse()
	ctrl.SetLogger(logr.Discard())
	if *generateOnly != "" {
		for _, name := range strings.Split(o.scenarios, ",") {
			if name = strings.TrimSpace(name); name != "" && name != "example" {
				if _, err := parseScenario(name, o.example, *generateOnly, o.shards, o.idleFor); err != nil {
					fmt.Fprintln(os.Stderr, "bench:", err)
					os.Exit(1)
				}
			}
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// scenario is one repository to converge.
type scenario struct {
	name   string
	repo   string
	levels int
	apps   int // > 0 for the flat variant: its floor is a throughput floor
	// helmReleases > 0 for the HelmRelease variant: that many must be
	// Ready, and the floor is the Helm SDK installing them.
	helmReleases int
	// wantKs > 0: at least that many Kustomizations must be Ready.
	wantKs int
	// restart: once converged, the engine is restarted and what that
	// costs is measured (see restart).
	restart bool
	// idleFor > 0: once converged, the engine is left alone that long and
	// its CPU, memory and API writes are read at the start and the end.
	idleFor time.Duration
	// churn: once converged, a commit changes 10% of the apps.
	churn bool
	// shards > 0: weir runs as a main process and that many shards.
	shards int
	// homeOps: the repository substitutes from the cluster; its floor is
	// the Helm SDK installing its releases.
	homeOps bool
}

// options are the command's flags.
type options struct {
	example, scenarios, peers, cpuProfile string
	heapProfile, keepLogs                 string
	settle, idleFor, profileFor           time.Duration
	shards                                int
}

// result is one engine's run of one scenario.
type result struct {
	took, floor  time.Duration
	deployFloor  time.Duration // the chain's bare Deployment floor, for comparison
	count        int
	peakRSS, rss int64 // bytes, summed over the engine's processes
	cpu          time.Duration
	// restarted is the restart variant's measure.
	restarted *restartResult
	// idled is the idle variant's measure.
	idled *idleResult
	// churned is the churn variant's measure.
	churned *churnResult
}

func run(o options) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "weir-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	weirBin := filepath.Join(tmp, "weir")
	build := exec.Command("go", "build", "-o", weirBin, "./cmd/weir")
	// As released (make build, the image): static, which keeps the
	// binary's resident pages some 50 MiB smaller (see the Makefile).
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building weir: %w", err)
	}
	engines := []engine{weirEngine{bin: weirBin, shards: o.shards}}
	if o.peers != "" {
		f, err := fluxFrom(o.peers)
		if err != nil {
			return err
		}
		engines = append(engines, f)
	}

	reg, err := startRegistry(ctx, up.FindCharts(o.example))
	if err != nil {
		return err
	}
	defer reg.Stop()
	appChart, err := loadAppChart(up.FindCharts(o.example))
	if err != nil {
		return err
	}

	exampleCopy := filepath.Join(tmp, "example")
	if err := os.CopyFS(exampleCopy, os.DirFS(o.example)); err != nil {
		return fmt.Errorf("copying %s: %w", o.example, err)
	}
	var scenarios []scenario
	for _, name := range strings.Split(o.scenarios, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		sc, err := parseScenario(name, exampleCopy, tmp, o.shards, o.idleFor)
		if err != nil {
			return err
		}
		scenarios = append(scenarios, sc)
	}

	var restarted, idled, churned []string
	defer func() {
		for _, t := range []struct {
			head  string
			lines []string
		}{
			{"| scenario | engine | objects | time until each is reconciled again | API writes meanwhile |\n| --- | --- | --- | --- | --- |", restarted},
			{"| scenario | engine | objects | idle for | RSS at start | RSS at end | CPU seconds per minute | API writes meanwhile |\n| --- | --- | --- | --- | --- | --- | --- | --- |", idled},
			{"| scenario | engine | apps changed | time until applied | objects of the unchanged apps written | API writes meanwhile |\n| --- | --- | --- | --- | --- | --- |", churned},
		} {
			if len(t.lines) == 0 {
				continue
			}
			fmt.Println()
			fmt.Println(t.head)
			for _, l := range t.lines {
				fmt.Println(l)
			}
		}
	}()
	fmt.Println("| scenario | engine | objects Ready | time to all Ready | floor | ratio to floor | peak RSS | RSS idle | CPU |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, sc := range scenarios {
		var first *result
		for _, e := range engines {
			if sc.shards > 0 && e.name() != "weir" {
				continue
			}
			r, err := measure(ctx, filepath.Join(tmp, "state"), reg.Host, appChart, sc, e, o)
			if err != nil {
				return fmt.Errorf("%s with %s: %w", sc.name, e.name(), err)
			}
			vs := ""
			if first != nil {
				vs = fmt.Sprintf(" (%.1fx weir)", r.took.Seconds()/first.took.Seconds())
			} else {
				first = r
			}
			floor, ratio := "-", "-"
			if r.floor > 0 {
				floor = fmt.Sprintf("%.2f s", r.floor.Seconds())
				ratio = fmt.Sprintf("%.2fx", r.took.Seconds()/r.floor.Seconds())
			}
			if r.deployFloor > 0 {
				floor += fmt.Sprintf(" (Deployments only: %.2f s)", r.deployFloor.Seconds())
			}
			fmt.Printf("| %s | %s | %d | %.2f s%s | %s | %s | %s | %s | %.1f s |\n", sc.name, e.name(), r.count,
				r.took.Seconds(), vs, floor, ratio, mib(r.peakRSS), mib(r.rss), r.cpu.Seconds())
			if rr := r.restarted; rr != nil {
				restarted = append(restarted, fmt.Sprintf("| %s | %s | %d | %.2f s | %d: %s |", sc.name, e.name(), r.count, rr.took.Seconds(), rr.total(), rr))
			}
			if ir := r.idled; ir != nil {
				idled = append(idled, fmt.Sprintf("| %s | %s | %d | %s | %s | %s | %.2f | %d: %s |", sc.name, e.name(), r.count, ir.took,
					mib(ir.rssStart), mib(ir.rssEnd), ir.cpu.Seconds()/ir.took.Minutes(), ir.writes.total(), ir.writes))
			}
			if cr := r.churned; cr != nil {
				churned = append(churned, fmt.Sprintf("| %s | %s | %d | %.2f s | %d | %d: %s |", sc.name, e.name(), cr.changed, cr.took.Seconds(),
					cr.untouchedWritten, cr.writes.total(), cr.writes))
			}
		}
	}
	return nil
}

// startRegistry starts the OCI registry that serves every run's charts
// and pushes the charts of dir to it, as charts/<name>:<version>; an
// empty dir pushes none.
func startRegistry(ctx context.Context, dir string) (*ociregistry.Registry, error) {
	reg, err := ociregistry.Start(ctx, ociregistry.Options{})
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return reg, nil
	}
	if _, err := reg.PushCharts(ctx, dir); err != nil {
		reg.Stop()
		return nil, fmt.Errorf("pushing the charts of %s: %w", dir, err)
	}
	return reg, nil
}

// measure runs one scenario with one engine on a fresh control plane,
// whose charts come from the registry at registryHost.
func measure(ctx context.Context, stateRoot, registryHost string, appChart *chart.Chart, sc scenario, e engine, o options) (*result, error) {
	state := filepath.Join(stateRoot, strconv.FormatInt(time.Now().UnixNano(), 36))
	defer os.RemoveAll(state)
	if o.keepLogs != "" {
		defer keepLogs(state, o.keepLogs, sc.name+"."+e.name())
	}
	// Room for every pod: the floor's and the engine's objects stay side
	// by side, one pod per app and per release, and a kwok node holds
	// 1000 pods.
	pods := 2*(sc.apps+sc.helmReleases) + 100
	cluster, err := localcluster.Start(ctx, localcluster.Options{StateDir: filepath.Join(state, "cluster"), Nodes: pods/900 + 1})
	if err != nil {
		return nil, err
	}
	defer cluster.Stop()
	c, err := client.New(cluster.RESTConfig(), client.Options{Scheme: kube.Scheme()})
	if err != nil {
		return nil, err
	}
	if err := install.Install(ctx, c); err != nil {
		return nil, err
	}
	// The Gateway API's CRDs, which weir up installs too: the example
	// routes its webhook Receiver with an HTTPRoute.
	if err := gatewayapi.Install(ctx, c); err != nil {
		return nil, err
	}
	if err := up.WriteRegistryConfigMap(ctx, c, registryHost); err != nil {
		return nil, err
	}
	url, gitRepo, stopGit, err := serve(sc.repo)
	if err != nil {
		return nil, err
	}
	defer stopGit()
	if err := ageSecret(ctx, c, sc.repo); err != nil {
		return nil, err
	}
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "bench-git"},
		Data: map[string]string{"BENCH_GIT_URL": url}}); err != nil {
		return nil, err
	}

	res := &result{}
	switch {
	case sc.restart || sc.idleFor > 0 || sc.churn:
		// These measure what follows convergence: both-N measures the
		// convergence itself against its floor.
	case sc.apps > 0 && sc.helmReleases > 0:
		res.floor, err = bothFloor(ctx, cluster.RESTConfig(), c, appChart, sc.apps, sc.helmReleases)
	case sc.apps > 0:
		res.floor, err = throughputFloor(ctx, c, sc.apps)
	case sc.helmReleases > 0:
		res.floor, err = helmFloor(ctx, cluster.RESTConfig(), c, appChart, sc.helmReleases)
	default:
		var one time.Duration
		if one, err = deploymentFloor(ctx, c); err != nil {
			return nil, err
		}
		res.deployFloor = one * time.Duration(sc.levels)
		var perLevel []int
		if perLevel, err = chainLevels(sc.repo); err != nil {
			return nil, err
		}
		res.floor, err = helmChainFloor(ctx, cluster.RESTConfig(), c, appChart, perLevel)
	}
	if err != nil {
		return nil, err
	}

	procs, probes, metricsAddrs, err := e.start(ctx, cluster.Kubeconfig, state)
	if err != nil {
		return nil, err
	}
	defer func() { stopAll(procs) }()
	if err := waitReady(ctx, probes, time.Minute); err != nil {
		return nil, err
	}
	// The clock starts once every process leads: start-up is not counted.
	if err := waitLeaders(ctx, c, len(procs), time.Minute); err != nil {
		return nil, err
	}

	src := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "flux-system"},
		Spec: sourcev1.GitRepositorySpec{URL: url, Interval: metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
	}
	root := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "flux-system"},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Hour}, Path: "./kubernetes/flux/cluster", Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "flux-system"}},
	}
	start := time.Now()
	var profiled chan error
	if o.cpuProfile != "" {
		profiled = make(chan error, 1)
		go func() {
			profiled <- cpuProfile(ctx, metricsAddrs, o.profileFor, o.cpuProfile+"."+strings.ReplaceAll(sc.name, " ", "-"))
		}()
	}
	if err := c.Create(ctx, src); err != nil {
		return nil, err
	}
	if err := c.Create(ctx, root); err != nil {
		return nil, err
	}
	res.count, err = waitAllReady(ctx, c, sc.wantKs, sc.helmReleases, 30*time.Minute)
	if err != nil {
		return nil, err
	}
	res.took = time.Since(start)
	if profiled != nil {
		if err := <-profiled; err != nil {
			return nil, err
		}
	}
	time.Sleep(o.settle)
	if o.heapProfile != "" {
		if err := heapProfile(ctx, metricsAddrs, o.heapProfile+"."+strings.ReplaceAll(sc.name, " ", "-")); err != nil {
			return nil, err
		}
	}
	for _, p := range procs {
		peak, rss, cpu := usage(p.Process.Pid)
		res.peakRSS += peak
		res.rss += rss
		res.cpu += cpu
	}
	if sc.idleFor > 0 {
		ir, err := idleFor(ctx, cluster.RESTConfig(), procs, sc.idleFor)
		if err != nil {
			return nil, fmt.Errorf("idling: %w", err)
		}
		res.idled = &ir
	}
	if sc.churn {
		cr, err := churn(ctx, cluster.RESTConfig(), c, gitRepo, sc)
		if err != nil {
			return nil, fmt.Errorf("churning: %w", err)
		}
		res.churned = &cr
	}
	if sc.restart {
		rr, again, err := restart(ctx, cluster.RESTConfig(), e, cluster.Kubeconfig, state, procs, res.count)
		procs = again
		if err != nil {
			return nil, fmt.Errorf("restarting: %w", err)
		}
		res.restarted = &rr
	}
	return res, nil
}

// waitAllReady waits until more than one Kustomization (at least wantKs
// when it is positive), or at least helmReleases HelmReleases, exist and
// every Kustomization and HelmRelease is Ready at its generation; it
// returns how many there are.
func waitAllReady(ctx context.Context, c client.Client, wantKs, helmReleases int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		var ks kustomizev1.KustomizationList
		var hrs helmv2.HelmReleaseList
		listed := time.Now()
		err := c.List(ctx, &ks)
		if err == nil {
			err = c.List(ctx, &hrs)
		}
		if err == nil && (len(ks.Items) > 1 || helmReleases > 0) && len(ks.Items) >= wantKs && len(hrs.Items) >= helmReleases {
			total, ready := len(ks.Items)+len(hrs.Items), 0
			for i := range ks.Items {
				if k := &ks.Items[i]; conditions.IsReady(k) && k.Status.ObservedGeneration == k.Generation {
					ready++
				}
			}
			for i := range hrs.Items {
				if h := &hrs.Items[i]; conditions.IsReady(h) && h.Status.ObservedGeneration == h.Generation {
					ready++
				}
			}
			if ready == total {
				return ready, nil
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("%d of %d Kustomizations and HelmReleases Ready after %s", ready, total, timeout)
			}
		}
		if time.Now().After(deadline) {
			return 0, errors.New("the Kustomizations and HelmReleases did not appear")
		}
		time.Sleep(pollAfter(time.Since(listed)))
	}
}

// waitLeaders waits until n leases in flux-system have a holder.
func waitLeaders(ctx context.Context, c client.Client, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var leases coordinationv1.LeaseList
		if err := c.List(ctx, &leases, client.InNamespace("flux-system")); err == nil {
			held := 0
			for _, l := range leases.Items {
				if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
					held++
				}
			}
			if held >= n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the engine did not take its leader leases within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve serves the repository folder from an in-process Git server; a
// later gitserver.Snapshot of the returned repository pushes a commit.
func serve(dir string) (string, *git.Repository, func(), error) {
	repo := gitserver.NewMemoryRepository()
	if _, err := gitserver.Snapshot(repo, "main", dir, "bench"); err != nil {
		return "", nil, nil, err
	}
	srv := gitserver.New()
	srv.Add("cluster", repo)
	ctx, cancel := context.WithCancel(context.Background())
	base, err := srv.Start(ctx, "127.0.0.1:0")
	if err != nil {
		cancel()
		return "", nil, nil, err
	}
	return base + "/cluster.git", repo, cancel, nil
}

// ageSecret loads the repository's demo age key into flux-system/sops-age.
func ageSecret(ctx context.Context, c client.Client, repo string) error {
	key, err := os.ReadFile(filepath.Join(repo, "age.key"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "sops-age"},
		Data:       map[string][]byte{"age.agekey": key},
	})
}

func mib(b int64) string { return fmt.Sprintf("%d MiB", b>>20) }

// keepLogs copies the processes' logs of a run's state folder to dir, as
// <prefix>.<process>.log, for reading after the run.
func keepLogs(state, dir, prefix string) {
	logs, _ := filepath.Glob(filepath.Join(state, "*.log"))
	if len(logs) == 0 {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench: keeping the logs:", err)
		return
	}
	name := strings.NewReplacer(" ", "-", "/", "-").Replace(prefix)
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name+"."+filepath.Base(l)), b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: keeping the logs:", err)
		}
	}
}
