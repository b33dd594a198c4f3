package manager_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/weirhq/weir/internal/manager"
	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.WithoutControllers()) }

func TestShardReconcilesOnlyItsLabelledObjectsAndServesProbesAndMetrics(t *testing.T) {
	ns := env.Namespace(t)
	git := testenv.NewGitServer(t, "", "")
	h := git.Repo(t, "app").Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")

	opts := manager.DefaultOptions()
	opts.LeaderElect = true
	opts.LeaderElectionNamespace = ns
	opts.LeaderElectionID = "weir-shard1"
	opts.WatchLabelSelector = "sharding.fluxcd.io/key in (shard1)"
	opts.MetricsAddr = freeAddr(t)
	opts.HealthAddr = freeAddr(t)
	opts.StoragePath = t.TempDir()
	opts.StorageAddr = "127.0.0.1:0"
	opts.Logger = zap.New(zap.WriteTo(io.Discard))
	m, err := manager.New(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}()

	mine := gitRepository(ns, "mine", git.HTTPURL("app"), map[string]string{"sharding.fluxcd.io/key": "shard1"})
	other := gitRepository(ns, "other", git.HTTPURL("app"), map[string]string{"sharding.fluxcd.io/key": "shard2"})
	for _, o := range []*sourcev1.GitRepository{mine, other} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 60*time.Second, "the shard's object to be Ready", func() bool {
		got := &sourcev1.GitRepository{}
		return env.Client.Get(ctx, client.ObjectKeyFromObject(mine), got) == nil && conditions.IsReady(got) &&
			got.Status.Artifact.Revision == "main@sha1:"+h.String()
	})
	got := &sourcev1.GitRepository{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(other), got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 0 || len(got.Finalizers) != 0 {
		t.Errorf("another shard's object was touched: %+v", got.Status)
	}

	// The leader holds the lease it was told to use.
	// With a selector the lease name carries its hash, so shards that kept
	// the default ID do not compete for one lease.
	var leases coordinationv1.LeaseList
	if err := env.Client.List(ctx, &leases, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(leases.Items) != 1 || !strings.HasPrefix(leases.Items[0].Name, "weir-shard1-") ||
		leases.Items[0].Spec.HolderIdentity == nil || *leases.Items[0].Spec.HolderIdentity == "" {
		t.Errorf("want one held lease named weir-shard1-<hash> in %s, got %+v", ns, leases.Items)
	}
	if body := get(t, "http://"+opts.HealthAddr+"/readyz"); !strings.Contains(body, "ok") {
		t.Errorf("/readyz answered %q", body)
	}
	if body := get(t, "http://"+opts.HealthAddr+"/healthz"); !strings.Contains(body, "ok") {
		t.Errorf("/healthz answered %q", body)
	}
	metrics := get(t, "http://"+opts.MetricsAddr+"/metrics")
	want := fmt.Sprintf(`gotk_reconcile_duration_seconds_count{kind="GitRepository",name="mine",namespace="%s"}`, ns)
	if !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %s", want)
	}
}

func gitRepository(ns, name, url string, labels map[string]string) *sourcev1.GitRepository {
	return &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: sourcev1.GitRepositorySpec{
			URL:       url,
			Interval:  metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		},
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
