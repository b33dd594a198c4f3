package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
)

// restartResult is what restarting an engine over converged objects
// cost: the time until it had reconciled every one again, and the writes
// it made to the API server meanwhile, by resource.
type restartResult struct {
	took   time.Duration
	writes map[string]int
}

// total sums the writes.
func (r restartResult) total() int {
	n := 0
	for _, v := range r.writes {
		n += v
	}
	return n
}

// String lists the writes by resource, most first.
func (r restartResult) String() string {
	if len(r.writes) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(r.writes))
	for k := range r.writes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return r.writes[b] - r.writes[a] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", r.writes[k], k)
	}
	return strings.Join(parts, ", ")
}

// engineWrites are the resources the engines write: their own objects
// (status included) and what the scenarios apply. Leases (leader
// election), Events and what the control plane itself writes (Pods,
// ReplicaSets, Deployment status, kwok's Nodes) are left out.
var engineWrites = map[string]bool{
	"kustomizations": true, "helmreleases": true, "gitrepositories": true, "ocirepositories": true,
	"helmrepositories": true, "helmcharts": true, "configmaps": true, "secrets": true,
	"services": true, "deployments": true, "namespaces": true,
}

// apiWrites reads, from the API server's own metrics, how many writes
// (POST, PUT, PATCH, APPLY, DELETE; not dry runs) it has served for each
// resource the engines write; the status of Deployments, which the
// control plane writes, is left out.
func apiWrites(ctx context.Context, cfg *rest.Config) (map[string]int, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	defer resp.Body.Close()
	families, err := parseMetrics(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	mf := families["apiserver_request_total"]
	if mf == nil {
		return nil, fmt.Errorf("the API server's metrics have no apiserver_request_total")
	}
	for _, m := range mf.GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		switch l["verb"] {
		case "POST", "PUT", "PATCH", "APPLY", "DELETE":
		default:
			continue
		}
		if l["dry_run"] != "" || !engineWrites[l["resource"]] || (l["resource"] == "deployments" && l["subresource"] == "status") {
			continue
		}
		key := l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		out[key] += int(m.GetCounter().GetValue())
	}
	return out, nil
}

func parseMetrics(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics: %w", err)
	}
	return families, nil
}

// reconciles reads, from an engine's metrics endpoints, how many
// reconciles of Kustomizations and HelmReleases its controllers have
// finished (controller-runtime's controller_runtime_reconcile_total).
func reconciles(ctx context.Context, endpoints []string) (int, error) {
	n := 0
	for _, e := range endpoints {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		families, err := parseMetrics(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		mf := families["controller_runtime_reconcile_total"]
		if mf == nil {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, p := range m.GetLabel() {
				if p.GetName() == "controller" {
					c := strings.ToLower(p.GetValue())
					if strings.Contains(c, "kustomization") || strings.Contains(c, "helmrelease") {
						n += int(m.GetCounter().GetValue())
					}
				}
			}
		}
	}
	return n, nil
}

// restart stops the engine's processes over converged objects, starts it
// again and measures the time until it has reconciled each of the
// objects (Kustomizations and HelmReleases) again, and the writes it made
// meanwhile, read 5 s after (status updates come last).
func restart(ctx context.Context, cfg *rest.Config, e engine, kubeconfig, state string, procs []*exec.Cmd, objects int) (restartResult, []*exec.Cmd, error) {
	stopAll(procs)
	before, err := apiWrites(ctx, cfg)
	if err != nil {
		return restartResult{}, nil, err
	}
	start := time.Now()
	procs, probes, metrics, err := e.start(ctx, kubeconfig, state)
	if err != nil {
		return restartResult{}, nil, err
	}
	if err := waitReady(ctx, probes, time.Minute); err != nil {
		return restartResult{}, procs, err
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		n, err := reconciles(ctx, metrics)
		if err == nil && n >= objects {
			break
		}
		if time.Now().After(deadline) {
			return restartResult{}, procs, fmt.Errorf("%d of %d objects reconciled within 10 minutes of the restart (%v)", n, objects, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	res := restartResult{took: time.Since(start), writes: map[string]int{}}
	time.Sleep(5 * time.Second)
	after, err := apiWrites(ctx, cfg)
	if err != nil {
		return res, procs, err
	}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			res.writes[k] = d
		}
	}
	return res, procs, nil
}
