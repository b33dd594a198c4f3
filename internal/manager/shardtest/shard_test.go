// Package shardtest runs weir as two `weir controller` processes over one
// cluster, each watching its own shard with --watch-label-selector, as a
// cluster that outgrows one process spreads across replicas, and checks
// that the load is split: every object is reconciled by the one shard its
// sharding.fluxcd.io/key label names, and by no other.
package shardtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/weirhq/weir/internal/cli"
	"github.com/weirhq/weir/internal/testenv"
)

// asWeir makes the test binary act as the weir command.
const asWeir = "WEIR_SHARDTEST_AS_WEIR"

var env *testenv.Env

func TestMain(m *testing.M) {
	if os.Getenv(asWeir) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	ctrllog.SetLogger(logr.Discard())
	testenv.Main(m, &env, testenv.WithoutControllers())
}

// shard is one `weir controller` process.
type shard struct {
	key, metrics, storage string
	cmd                   *exec.Cmd
}

// startShard runs this test binary as `weir controller` watching the
// objects whose shard key is key.
func startShard(t *testing.T, key, leaseNS string) *shard {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := &shard{key: key, metrics: freeAddr(t), storage: freeAddr(t)}
	health := freeAddr(t)
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "weir.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(self, "controller",
		"--kubeconfig", env.Cluster.Kubeconfig,
		"--watch-label-selector", "sharding.fluxcd.io/key in ("+key+")",
		"--leader-election-namespace", leaseNS,
		"--metrics-addr", s.metrics, "--health-addr", health,
		"--storage-path", filepath.Join(dir, "artifacts"), "--storage-addr", s.storage,
		"--receiver-addr", "0")
	s.cmd.Env = append(os.Environ(), asWeir+"=1")
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("shard %s logged:\n%s", key, tail(string(b), 40))
			}
		}
	})
	waitUntil(t, time.Minute, "shard "+key+" to be ready", func() bool {
		resp, err := http.Get("http://" + health + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

// reconciled reads, from the shard's metrics, the Kustomizations and
// GitRepositories it has reconciled: gotk_reconcile_duration_seconds has
// one series per object, as in Flux.
func (s *shard) reconciled(t *testing.T) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gotk_reconcile_duration_seconds_count{") {
			continue
		}
		labels := parseLabels(line[strings.Index(line, "{")+1 : strings.Index(line, "}")])
		out[labels["kind"]+"/"+labels["namespace"]+"/"+labels["name"]] = true
	}
	return out
}

func TestTwoProcessesSplitTheLoadAndEachObjectHasOneOwner(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	const apps = 40
	files := map[string]string{}
	for i := range apps {
		files[fmt.Sprintf("apps/app-%d/cm.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-%d}\ndata: {shard: \"%s\"}\n", i, keyOf(i))
	}
	git := testenv.NewGitServer(t, "", "")
	git.Repo(t, "cluster").Commit("main", files, "apps")

	shards := map[string]*shard{"shard1": startShard(t, "shard1", ns), "shard2": startShard(t, "shard2", ns)}

	// As in Flux, each shard holds its own source, and a Kustomization
	// and its source live in the same shard.
	for key := range shards {
		src := &sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cluster-" + key, Labels: map[string]string{"sharding.fluxcd.io/key": key}},
			Spec: sourcev1.GitRepositorySpec{URL: git.HTTPURL("cluster"), Interval: metav1.Duration{Duration: time.Hour},
				Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
		}
		if err := env.Client.Create(ctx, src); err != nil {
			t.Fatal(err)
		}
	}
	for i := range apps {
		ks := &kustomizev1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%d", i), Labels: map[string]string{"sharding.fluxcd.io/key": keyOf(i)}},
			Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Hour}, Path: fmt.Sprintf("./apps/app-%d", i),
				Prune: true, TargetNamespace: ns,
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "cluster-" + keyOf(i)}},
		}
		if err := env.Client.Create(ctx, ks); err != nil {
			t.Fatal(err)
		}
	}

	waitUntil(t, 2*time.Minute, "every Kustomization of both shards to be Ready", func() bool {
		var list kustomizev1.KustomizationList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil || len(list.Items) != apps {
			return false
		}
		for i := range list.Items {
			if !conditions.IsReady(&list.Items[i]) {
				return false
			}
		}
		return true
	})
	for i := range apps {
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("app-%d", i)}, cm); err != nil {
			t.Fatalf("app-%d was not applied: %v", i, err)
		}
	}

	// Each source's artifact is served by the shard that owns it.
	for key, s := range shards {
		src := &sourcev1.GitRepository{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "cluster-" + key}, src); err != nil {
			t.Fatal(err)
		}
		if src.Status.Artifact == nil || !strings.Contains(src.Status.Artifact.URL, s.storage) {
			t.Errorf("GitRepository cluster-%s's artifact is not served by its shard (%s): %+v", key, s.storage, src.Status.Artifact)
		}
	}

	// Every object was reconciled by its own shard and by no other.
	seen := map[string]map[string]bool{}
	for key, s := range shards {
		seen[key] = s.reconciled(t)
	}
	owned := 0
	for i := range apps {
		id := fmt.Sprintf("Kustomization/%s/app-%d", ns, i)
		for key := range shards {
			switch {
			case key == keyOf(i) && !seen[key][id]:
				t.Errorf("%s (shard %s) was not reconciled by its shard", id, keyOf(i))
			case key != keyOf(i) && seen[key][id]:
				t.Errorf("%s (shard %s) was also reconciled by shard %s", id, keyOf(i), key)
			case key == keyOf(i):
				owned++
			}
		}
	}
	for key := range shards {
		for other := range shards {
			id := "GitRepository/" + ns + "/cluster-" + other
			if seen[key][id] != (key == other) {
				t.Errorf("shard %s reconciled %s: %v", key, id, seen[key][id])
			}
		}
	}
	t.Logf("%d Kustomizations split over %d processes, each reconciled by its shard only (shard1 %d objects, shard2 %d)",
		owned, len(shards), len(seen["shard1"]), len(seen["shard2"]))

	// A shard that stops leaves its objects alone: the other shard does
	// not take them over, and what was applied stays.
	s1 := shards["shard1"]
	_ = s1.cmd.Process.Kill()
	_ = s1.cmd.Wait()
	req := time.Now().Format(time.RFC3339Nano)
	for _, i := range []int{0, 1} { // app-0 is shard1's, app-1 shard2's
		ks := &kustomizev1.Kustomization{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("app-%d", i)}, ks); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(ks.DeepCopy())
		if ks.Annotations == nil {
			ks.Annotations = map[string]string{}
		}
		ks.Annotations["reconcile.fluxcd.io/requestedAt"] = req
		if err := env.Client.Patch(ctx, ks, patch); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, time.Minute, "shard2 to handle its own request", func() bool {
		ks := &kustomizev1.Kustomization{}
		return env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-1"}, ks) == nil && ks.Status.LastHandledReconcileAt == req
	})
	ks := &kustomizev1.Kustomization{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-0"}, ks); err != nil {
		t.Fatal(err)
	}
	if ks.Status.LastHandledReconcileAt == req {
		t.Error("app-0 of the stopped shard1 was handled by another shard")
	}
}

// keyOf is the shard of app i: the even apps are shard1's, the odd shard2's.
func keyOf(i int) string {
	if i%2 == 0 {
		return "shard1"
	}
	return "shard2"
}

// parseLabels reads a Prometheus label list: a="x",b="y".
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
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

func waitUntil(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
