package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-git/go-git/v5"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/gitserver"
)

// writeCounts are API writes by resource.
type writeCounts map[string]int

// total sums the writes.
func (w writeCounts) total() int {
	n := 0
	for _, v := range w {
		n += v
	}
	return n
}

// String lists the writes by resource, most first.
func (w writeCounts) String() string {
	if len(w) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return w[b] - w[a] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", w[k], k)
	}
	return strings.Join(parts, ", ")
}

// writesSince reads the API server's write counters again and returns
// what grew since before.
func writesSince(ctx context.Context, cfg *rest.Config, before map[string]int) (writeCounts, error) {
	after, err := apiWrites(ctx, cfg)
	if err != nil {
		return nil, err
	}
	out := writeCounts{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out, nil
}

// bothFloor is the floor of a cluster holding apps flat apps and
// helmReleases releases: the harness applying the apps and installing the
// releases at once, each with the engines' number of workers, as one
// engine runs its Kustomization and HelmRelease workers at once.
func bothFloor(ctx context.Context, cfg *rest.Config, c client.Client, ch *chart.Chart, apps, helmReleases int) (time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	var ksErr, hrErr error
	wg.Add(2)
	go func() { defer wg.Done(); _, ksErr = throughputFloor(ctx, c, apps) }()
	go func() { defer wg.Done(); _, hrErr = helmFloor(ctx, cfg, c, ch, helmReleases) }()
	wg.Wait()
	if err := errors.Join(ksErr, hrErr); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// idleResult is what an engine cost while nothing changed.
type idleResult struct {
	took             time.Duration
	rssStart, rssEnd int64
	cpu              time.Duration
	writes           writeCounts
}

// idleFor leaves the converged engine alone for d and reads its memory
// and CPU at the start and the end, and the API writes meanwhile.
func idleFor(ctx context.Context, cfg *rest.Config, procs []*exec.Cmd, d time.Duration) (idleResult, error) {
	before, err := apiWrites(ctx, cfg)
	if err != nil {
		return idleResult{}, err
	}
	var res idleResult
	var cpu0 time.Duration
	for _, p := range procs {
		_, rss, cpu := usage(p.Process.Pid)
		res.rssStart += rss
		cpu0 += cpu
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(d):
	}
	res.took = time.Since(start).Round(time.Second)
	var cpu1 time.Duration
	for _, p := range procs {
		_, rss, cpu := usage(p.Process.Pid)
		res.rssEnd += rss
		cpu1 += cpu
	}
	res.cpu = cpu1 - cpu0
	res.writes, err = writesSince(ctx, cfg, before)
	return res, err
}

// churnResult is what a commit changing a tenth of the apps cost.
type churnResult struct {
	changed int
	took    time.Duration
	// untouchedWritten counts the objects of unchanged apps (ConfigMap,
	// Service, Deployment, HelmRelease, Helm release Secrets) that changed.
	untouchedWritten int
	writes           writeCounts
}

// churn commits a change to every tenth flat app (its ConfigMap's data)
// and every tenth HelmRelease (a value), asks for the source as a webhook
// Receiver would, waits until the changed apps are applied and checks
// that no object of the other apps was written.
func churn(ctx context.Context, cfg *rest.Config, c client.Client, repo *git.Repository, sc scenario) (churnResult, error) {
	changed := func(i int) bool { return i%10 == 0 }
	untouched, err := untouchedState(ctx, c, sc, changed)
	if err != nil {
		return churnResult{}, err
	}
	hrGen := map[string]int64{}
	res := churnResult{}
	for i := range max(sc.apps, sc.helmReleases) {
		if !changed(i) {
			continue
		}
		if i < sc.apps {
			app := "app-" + strconv.Itoa(i)
			if err := writeFile(sc.repo, "src/"+app+"/all.yaml", appManifests(app, "v2")); err != nil {
				return res, err
			}
			res.changed++
		}
		if i < sc.helmReleases {
			name := "rel-" + strconv.Itoa(i)
			hr := &helmv2.HelmRelease{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, hr); err != nil {
				return res, err
			}
			hrGen[name] = hr.Generation
			if err := writeFile(sc.repo, "helm/"+name+".yaml", helmReleaseManifest(name, "2")); err != nil {
				return res, err
			}
			res.changed++
		}
	}
	before, err := apiWrites(ctx, cfg)
	if err != nil {
		return res, err
	}
	if _, err := gitserver.Snapshot(repo, "main", sc.repo, "churn"); err != nil {
		return res, err
	}
	start := time.Now()
	src := &sourcev1.GitRepository{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "flux-system"}, src); err != nil {
		return res, err
	}
	patch := client.MergeFrom(src.DeepCopy())
	if src.Annotations == nil {
		src.Annotations = map[string]string{}
	}
	src.Annotations["reconcile.fluxcd.io/requestedAt"] = start.Format(time.RFC3339Nano)
	if err := c.Patch(ctx, src, patch); err != nil {
		return res, err
	}
	deadline := start.Add(15 * time.Minute)
	for {
		done := true
		for i := 0; i < sc.apps && done; i += 10 {
			cm := &corev1.ConfigMap{}
			done = c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-" + strconv.Itoa(i)}, cm) == nil && cm.Data["k"] == "v2"
		}
		for name, gen := range hrGen {
			if !done {
				break
			}
			hr := &helmv2.HelmRelease{}
			done = c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, hr) == nil && hr.Generation > gen &&
				hr.Status.ObservedGeneration == hr.Generation && conditions.IsReady(hr)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return res, errors.New("the changed apps were not applied within 15 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.took = time.Since(start)
	time.Sleep(5 * time.Second) // status updates come last
	if res.writes, err = writesSince(ctx, cfg, before); err != nil {
		return res, err
	}
	after, err := untouchedState(ctx, c, sc, changed)
	if err != nil {
		return res, err
	}
	for k, v := range untouched {
		if after[k] != v {
			res.untouchedWritten++
		}
	}
	return res, nil
}

// untouchedState records, for every app that the churn does not change,
// the resource version of each of its objects and the number of its Helm
// release Secrets.
func untouchedState(ctx context.Context, c client.Client, sc scenario, changed func(int) bool) (map[string]string, error) {
	out := map[string]string{}
	get := func(kind string, obj client.Object, name string) error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, obj); err != nil {
			return fmt.Errorf("reading %s %s: %w", kind, name, err)
		}
		out[kind+"/"+name] = obj.GetResourceVersion()
		return nil
	}
	for i := range sc.apps {
		if changed(i) {
			continue
		}
		app := "app-" + strconv.Itoa(i)
		for kind, obj := range map[string]client.Object{"ConfigMap": &corev1.ConfigMap{}, "Service": &corev1.Service{}, "Deployment": &appsv1.Deployment{}} {
			if err := get(kind, obj, app); err != nil {
				return nil, err
			}
		}
	}
	for i := range sc.helmReleases {
		if changed(i) {
			continue
		}
		name := "rel-" + strconv.Itoa(i)
		if err := get("HelmRelease", &helmv2.HelmRelease{}, name); err != nil {
			return nil, err
		}
		var secrets corev1.SecretList
		if err := c.List(ctx, &secrets, client.InNamespace("default"), client.MatchingLabels{"owner": "helm", "name": name}); err != nil {
			return nil, err
		}
		out["release/"+name] = strconv.Itoa(len(secrets.Items))
	}
	return out, nil
}

// cpuProfile samples a CPU profile of each weir process, whose metrics
// are at metricsAddrs, for d and writes them to file (file.<n> for the
// second process on).
func cpuProfile(ctx context.Context, metricsAddrs []string, d time.Duration, file string) error {
	return fetchProfiles(ctx, metricsAddrs, fmt.Sprintf("profile?seconds=%d", int(d.Seconds())), file)
}

// heapProfile writes the heap profile of each weir process, whose
// metrics are at metricsAddrs, to file (file.<n> for the second process
// on).
func heapProfile(ctx context.Context, metricsAddrs []string, file string) error {
	return fetchProfiles(ctx, metricsAddrs, "heap", file)
}

// fetchProfiles writes the pprof profile at /debug/pprof/<which> of each
// weir process to file (file.<n> for the second process on).
func fetchProfiles(ctx context.Context, metricsAddrs []string, which, file string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(metricsAddrs))
	for i, m := range metricsAddrs {
		addr, ok := pprofAddrs.Load(m)
		if !ok {
			continue // not weir
		}
		out := file
		if i > 0 {
			out += "." + strconv.Itoa(i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := fmt.Sprintf("http://%s/debug/pprof/%s", addr, which)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				errs[i] = err
				return
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = fmt.Errorf("profiling %s: %w", addr, err)
				return
			}
			defer resp.Body.Close()
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				errs[i] = err
				return
			}
			f, err := os.Create(out)
			if err != nil {
				errs[i] = err
				return
			}
			defer f.Close()
			if _, err := io.Copy(f, resp.Body); err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
