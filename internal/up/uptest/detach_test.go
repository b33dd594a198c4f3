// Package uptest runs `weir up --detach` and `weir down` end to end, as a
// user does: the test binary acts as the weir command, the example
// repository is copied to a folder of its own, and every check is made
// from outside, through the kubeconfig weir up prints and the processes it
// leaves.
package uptest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/weirhq/weir/internal/cli"
	"github.com/weirhq/weir/internal/daemon"
	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/up"
)

// asWeir makes the test binary act as the weir command, for the commands
// the test runs and the background process weir up --detach starts.
const asWeir = "WEIR_TEST_AS_WEIR"

func TestMain(m *testing.M) {
	if os.Getenv(asWeir) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// weir runs the weir command and returns its output, failing the test
// unless it exits 0.
func weir(t *testing.T, args ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), asWeir+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("weir %s: %v\n%s", strings.Join(args, " "), err, &out)
	}
	return out.String()
}

// tryDown runs `weir down repo` and returns its output and error.
// weirAny runs weir and returns what it printed, whatever its exit code.
func weirAny(t *testing.T, args ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), asWeir+"=1")
	out, _ := cmd.CombinedOutput()
	return string(out)
}

func tryDown(repo string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "down", repo)
	cmd.Env = append(os.Environ(), asWeir+"=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDetachedUpConvergesFollowsEditsAndStopsCleanly is issue 5's
// end-to-end check: `weir up examples/cluster --detach` returns with the
// sync created; every Kustomization and HelmRelease turns Ready; an edit to
// a HelmRelease's values in the folder reaches the cluster; `weir down`
// leaves no process behind; a second `weir up` on the same state is Ready
// sooner than the first.
func TestDetachedUpConvergesFollowsEditsAndStopsCleanly(t *testing.T) {
	work := t.TempDir()
	repo := filepath.Join(work, "cluster")
	for _, d := range []string{"cluster", "charts"} {
		if err := os.CopyFS(filepath.Join(work, d), os.DirFS(filepath.Join("..", "..", "..", "examples", d))); err != nil {
			t.Fatal(err)
		}
	}
	stateDir := filepath.Join(work, "state")
	// Runs are recorded outside the state folder, where weir down finds them.
	t.Setenv(up.RunsDirEnv, filepath.Join(work, "runs"))

	start := time.Now()
	out := weir(t, "up", repo, "--detach", "--state-dir", stateDir)
	t.Logf("weir up --detach returned after %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	if want := "stop it with: weir down " + repo + " --state-dir " + stateDir; !strings.Contains(out, want) {
		t.Errorf("weir up --detach with a state folder of its own does not print the command that stops it (%q):\n%s", want, out)
	}
	m := regexp.MustCompile(`(?m)^export KUBECONFIG=(.+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("weir up --detach printed no kubeconfig export line:\n%s", out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(stateDir, "logs", "weir-up.log")); err == nil {
				t.Logf("weir-up.log:\n%s", tail(string(b), 60))
			}
		}
		_, _ = tryDown(repo)
	})
	c := clientFor(t, m[1])
	count := waitAllReady(t, c, 5*time.Minute)
	checkReconcileAll(t, c, weir(t, "reconcile", "--all", "--kubeconfig", m[1]))
	// weir check finds the weir up run through its kubeconfig: it holds no
	// leader lease.
	if out := weirAny(t, "check", "--kubeconfig", m[1]); !strings.Contains(out, "✔ weir runs outside the cluster: weir up (pid ") ||
		!strings.Contains(out, "✔ flux-system/sops-age: age key for Kustomizations") {
		t.Errorf("weir check on the weir up cluster printed:\n%s", out)
	}
	dash := regexp.MustCompile(`(?m)^dashboard: (http://127\.0\.0\.1:\d+/)$`).FindStringSubmatch(out)
	if dash == nil {
		t.Fatalf("weir up --detach printed no dashboard URL on loopback:\n%s", out)
	}
	if page := get(t, dash[1]); !strings.Contains(page, "weir") {
		t.Errorf("the dashboard at %s does not answer with its page:\n%s", dash[1], page)
	}
	if graph := get(t, dash[1]+"api/snapshot"); !strings.Contains(graph, `"echo"`) {
		t.Errorf("the dashboard's snapshot does not list the example's echo app:\n%.400s", graph)
	}
	first := time.Since(start)
	t.Logf("first weir up: %d Kustomizations and HelmReleases Ready in %s", count, first.Round(100*time.Millisecond))

	// An edit in the working tree: the echo app's timezone value.
	hrFile := filepath.Join(repo, "kubernetes", "apps", "default", "echo", "app", "helmrelease.yaml")
	b, err := os.ReadFile(hrFile)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), `timezone: "${TIMEZONE:=Etc/UTC}"`, `timezone: "Asia/Tokyo"`, 1)
	if edited == string(b) {
		t.Fatalf("the echo HelmRelease has no timezone value to edit:\n%s", b)
	}
	edit := time.Now()
	if err := os.WriteFile(hrFile, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	for {
		cm := &corev1.ConfigMap{}
		err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "echo-config"}, cm)
		if err == nil && cm.Data["timezone"] == "Asia/Tokyo" {
			break
		}
		// The target is 10 s; the bound here leaves room for a
		// loaded CI machine, and the time is logged.
		if time.Since(edit) > 60*time.Second {
			t.Fatalf("the edited value was not applied within 60 s (ConfigMap: %v, %v)", cm.Data, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the values edit reached the cluster in %s", time.Since(edit).Round(100*time.Millisecond))

	pids := recordedPIDs(t, stateDir)
	if len(pids) < 6 {
		t.Fatalf("want weir up and the 5 control plane processes recorded, got %v", pids)
	}
	// The folder alone finds the run, whatever its state folder.
	if out := weir(t, "down", repo); !strings.Contains(out, "✔ stopped weir up") {
		t.Errorf("weir down printed:\n%s", out)
	}
	for name, pid := range pids {
		if daemon.Alive(pid) {
			t.Errorf("%s (pid %d) still runs after weir down", name, pid)
		}
	}
	// Nothing left to stop is an error a script can see.
	if out, err := tryDown(repo); err == nil || !strings.Contains(out, "weir up was not running for "+repo) {
		t.Errorf("a second weir down exits 0 or does not say nothing ran (%v):\n%s", err, out)
	}

	start = time.Now()
	out = weir(t, "up", repo, "--detach", "--state-dir", stateDir)
	m = regexp.MustCompile(`(?m)^export KUBECONFIG=(.+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the second weir up --detach printed no kubeconfig export line:\n%s", out)
	}
	c = clientFor(t, m[1])
	waitAllReady(t, c, 5*time.Minute)
	second := time.Since(start)
	t.Logf("second weir up on the same state: Ready in %s (first: %s)", second.Round(100*time.Millisecond), first.Round(100*time.Millisecond))
	if second >= first {
		t.Errorf("the second weir up took %s, not less than the first's %s", second, first)
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "echo-config"}, cm); err != nil || cm.Data["timezone"] != "Asia/Tokyo" {
		t.Errorf("after a restart the edit is lost: %v %v", cm.Data, err)
	}
}

func clientFor(t *testing.T, kubeconfig string) client.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitAllReady waits until the example's Kustomizations and HelmReleases
// all exist and are Ready at their generation, and returns how many.
func waitAllReady(t *testing.T, c client.Client, timeout time.Duration) int {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var pending []string
	for time.Now().Before(deadline) {
		var ks kustomizev1.KustomizationList
		var hrs helmv2.HelmReleaseList
		if c.List(ctx, &ks) == nil && c.List(ctx, &hrs) == nil && len(ks.Items) > 1 && len(hrs.Items) > 0 {
			pending = pending[:0]
			for i := range ks.Items {
				if k := &ks.Items[i]; !conditions.IsReady(k) || k.Status.ObservedGeneration != k.Generation {
					pending = append(pending, "Kustomization "+k.Name)
				}
			}
			for i := range hrs.Items {
				if h := &hrs.Items[i]; !conditions.IsReady(h) || h.Status.ObservedGeneration != h.Generation {
					pending = append(pending, "HelmRelease "+h.Name)
				}
			}
			if len(pending) == 0 {
				return len(ks.Items) + len(hrs.Items)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("not all Ready within %s: %v", timeout, pending)
	return 0
}

// recordedPIDs reads weir up's pid and its control plane's from the state
// folder.
func recordedPIDs(t *testing.T, stateDir string) map[string]int {
	t.Helper()
	pids := map[string]int{}
	for _, dir := range []string{filepath.Join(stateDir, "run"), filepath.Join(stateDir, "cluster", "run")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			pids[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
		}
	}
	return pids
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// get fetches url and returns the body, failing unless it answers 200.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

// checkReconcileAll checks what `weir reconcile --all` printed on the
// example: one ✔ line per Kustomization and HelmRelease, each after the
// lines of its dependencies, and the sources before all of them.
func checkReconcileAll(t *testing.T, c client.Client, out string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	at := func(kind, ns, name string) []int {
		var found []int
		for i, l := range lines {
			if strings.HasPrefix(l, "✔ "+kind+" "+ns+"/"+name+": ") {
				found = append(found, i)
			}
		}
		return found
	}
	firstApplier := len(lines)
	lastSource := -1
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "✔ Kustomization ") || strings.HasPrefix(l, "✔ HelmRelease "):
			firstApplier = min(firstApplier, i)
		case strings.HasPrefix(l, "✔ GitRepository ") || strings.HasPrefix(l, "✔ OCIRepository ") || strings.HasPrefix(l, "✔ HelmRepository "):
			lastSource = i
		case strings.HasPrefix(l, "✗ "):
			t.Errorf("weir reconcile --all reported a failure on the example: %s", l)
		}
	}
	if lastSource < 0 || lastSource > firstApplier {
		t.Errorf("weir reconcile --all did not reconcile the sources first:\n%s", out)
	}
	var ks kustomizev1.KustomizationList
	var hrs helmv2.HelmReleaseList
	if err := c.List(context.Background(), &ks); err != nil {
		t.Fatal(err)
	}
	if err := c.List(context.Background(), &hrs); err != nil {
		t.Fatal(err)
	}
	type obj struct {
		kind, ns, name string
		deps           []string // namespace/name
	}
	var objs []obj
	kindOf := map[string]string{}
	for _, k := range ks.Items {
		o := obj{kind: "Kustomization", ns: k.Namespace, name: k.Name}
		for _, d := range k.Spec.DependsOn {
			o.deps = append(o.deps, cmpOr(d.Namespace, k.Namespace)+"/"+d.Name)
		}
		objs = append(objs, o)
		kindOf[k.Namespace+"/"+k.Name] = "Kustomization"
	}
	for _, h := range hrs.Items {
		o := obj{kind: "HelmRelease", ns: h.Namespace, name: h.Name}
		for _, d := range h.Spec.DependsOn {
			o.deps = append(o.deps, cmpOr(d.Namespace, h.Namespace)+"/"+d.Name)
		}
		objs = append(objs, o)
		if kindOf[h.Namespace+"/"+h.Name] == "" {
			kindOf[h.Namespace+"/"+h.Name] = "HelmRelease"
		}
	}
	for _, o := range objs {
		mine := at(o.kind, o.ns, o.name)
		if len(mine) != 1 {
			t.Errorf("%s %s/%s has %d lines in weir reconcile --all, want 1:\n%s", o.kind, o.ns, o.name, len(mine), out)
			continue
		}
		for _, d := range o.deps {
			ns, name, _ := strings.Cut(d, "/")
			dep := at(kindOf[d], ns, name)
			if len(dep) == 1 && dep[0] > mine[0] {
				t.Errorf("%s %s/%s was reconciled before its dependency %s", o.kind, o.ns, o.name, d)
			}
		}
	}
	t.Logf("weir reconcile --all on the example:\n%s", out)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
