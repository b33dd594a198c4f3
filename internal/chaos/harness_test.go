package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/weirhq/weir/internal/cli"
	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/loopback"
	"github.com/weirhq/weir/internal/testenv"
)

// asWeir makes the test binary act as the weir command.
const asWeir = "WEIR_CHAOS_AS_WEIR"

var env *testenv.Env

func TestMain(m *testing.M) {
	if os.Getenv(asWeir) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	ctrllog.SetLogger(logr.Discard())
	testenv.Main(m, &env, testenv.WithoutControllers())
}

// weirProcess is `weir controller` running as a process of its own.
type weirProcess struct {
	t       *testing.T
	args    []string
	logPath string
	health  string
	cmd     *exec.Cmd
	done    chan struct{}
}

// weirOptions say how a weir process runs; its artifact folder and address
// stay the same across restarts, as a Deployment's volume and Service do.
type weirOptions struct {
	storage     string
	storageAddr string
	leaderElect bool
	name        string
}

func newWeirOptions(t *testing.T) weirOptions {
	return weirOptions{storage: t.TempDir(), storageAddr: "127.0.0.1:" + strconv.Itoa(freePort(t)), name: "weir"}
}

// startWeir starts `weir controller` against the test cluster and waits
// until it answers /readyz.
func startWeir(t *testing.T, o weirOptions) *weirProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	health := "127.0.0.1:" + strconv.Itoa(freePort(t))
	w := &weirProcess{t: t, health: health, logPath: filepath.Join(t.TempDir(), o.name+".log")}
	w.args = []string{"controller", "--kubeconfig", env.Cluster.Kubeconfig,
		"--leader-elect=" + strconv.FormatBool(o.leaderElect), "--leader-election-namespace", "default",
		"--metrics-addr", "0", "--health-addr", health, "--receiver-addr", "0",
		"--storage-path", o.storage, "--storage-addr", o.storageAddr, "--log-level", "info"}
	log, err := os.OpenFile(w.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	w.cmd = exec.Command(exe, w.args...)
	w.cmd.Env = append(os.Environ(), asWeir+"=1")
	w.cmd.Stdout, w.cmd.Stderr = log, log
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("starting weir: %v", err)
	}
	w.done = make(chan struct{})
	go func() {
		_ = w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		w.stop()
		if t.Failed() {
			t.Logf("last lines of %s's log:\n%s", o.name, w.tail(40))
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + health + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w
			}
		}
		select {
		case <-w.done:
			t.Fatalf("weir exited while starting; its log:\n%s", w.tail(40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("weir did not answer /readyz within 2 minutes; its log:\n%s", w.tail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill ends weir with SIGKILL, as a crash or an OOM kill would.
func (w *weirProcess) kill() {
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.done
}

// stop ends weir as Kubernetes would: SIGTERM, then SIGKILL.
func (w *weirProcess) stop() {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.kill()
	}
}

func (w *weirProcess) tail(n int) string {
	b, _ := os.ReadFile(w.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// fault is what a faultProxy does to the requests it gets.
type fault int32

const (
	pass     fault = iota // forward every request
	refuse                // answer 500 Internal Server Error
	hang                  // hold every request without answering
	shutdown              // close the listener: connections are refused
)

// faultProxy stands between weir and a Git server or registry on
// loopback, and can be told to fail in each way a server fails.
type faultProxy struct {
	t      *testing.T
	target *url.URL
	mode   atomic.Int32
	addr   string
	mu     sync.Mutex
	srv    *http.Server
	hung   chan struct{}
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, target: &url.URL{Scheme: u.Scheme, Host: u.Host}, hung: make(chan struct{})}
	p.addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	p.listen()
	t.Cleanup(func() {
		p.set(pass)
		p.close()
	})
	return p
}

// url is target's URL through the proxy.
func (p *faultProxy) url(target string) string {
	u, _ := url.Parse(target)
	u.Host = p.addr
	return u.String()
}

func (p *faultProxy) listen() {
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("listening again on %s: %v", p.addr, err)
	}
	rp := httputil.NewSingleHostReverseProxy(p.target)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch fault(p.mode.Load()) {
		case refuse:
			http.Error(w, "internal error", http.StatusInternalServerError)
		case hang:
			p.mu.Lock()
			hung := p.hung
			p.mu.Unlock()
			select {
			case <-hung:
			case <-r.Context().Done():
			}
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		default:
			rp.ServeHTTP(w, r)
		}
	})}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (p *faultProxy) close() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// set switches the proxy to mode.
func (p *faultProxy) set(mode fault) {
	old := fault(p.mode.Swap(int32(mode)))
	if old == hang && mode != hang {
		p.mu.Lock()
		close(p.hung)
		p.hung = make(chan struct{})
		p.mu.Unlock()
	}
	switch {
	case mode == shutdown && old != shutdown:
		p.close()
	case mode != shutdown && old == shutdown:
		p.listen()
	}
}

// deletions watches the objects Kustomizations applied in a namespace and
// records every deletion: a fault must never make weir prune.
type deletions struct {
	mu      sync.Mutex
	deleted []string
	stops   []func()
}

func watchDeletions(t *testing.T, ns string) *deletions {
	t.Helper()
	d := &deletions{}
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"ConfigMapList", "DeploymentList"} {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("v1")
		if kind == "DeploymentList" {
			list.SetAPIVersion("apps/v1")
		}
		list.SetKind(kind)
		w, err := c.Watch(context.Background(), list, client.InNamespace(ns), client.HasLabels{"kustomize.toolkit.fluxcd.io/name"})
		if err != nil {
			t.Fatal(err)
		}
		d.stops = append(d.stops, w.Stop)
		go func() {
			for ev := range w.ResultChan() {
				if ev.Type != watch.Deleted {
					continue
				}
				if o, ok := ev.Object.(*unstructured.Unstructured); ok {
					d.mu.Lock()
					d.deleted = append(d.deleted, o.GetKind()+"/"+o.GetName())
					d.mu.Unlock()
				}
			}
		}()
	}
	t.Cleanup(d.stop)
	return d
}

func (d *deletions) stop() {
	for _, s := range d.stops {
		s()
	}
	d.stops = nil
}

// check fails the test when anything was deleted.
func (d *deletions) check(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.deleted) > 0 {
		t.Errorf("objects were deleted during the fault: %v", d.deleted)
	}
}

// chain is a dependency chain of Kustomizations app0 <- app1 <- ... in a
// namespace of its own, each applying a ConfigMap and a Deployment with
// wait: true, from a GitRepository "repo".
type chain struct {
	t     *testing.T
	ns    string
	n     int
	repo  *testenv.Repo
	src   *sourcev1.GitRepository
	names []string
}

// newChain commits the chain's files at value "1" and creates its
// GitRepository (through proxy, when given) and Kustomizations.
func newChain(t *testing.T, n int, sourceInterval time.Duration, proxy func(string) string) *chain {
	t.Helper()
	ns := env.Namespace(t)
	git := testenv.NewGitServer(t, "", "")
	repo := git.Repo(t, "cluster")
	c := &chain{t: t, ns: ns, n: n, repo: repo}
	repo.Commit("main", c.files("1"), "initial")
	gitURL := git.HTTPURL("cluster")
	if proxy != nil {
		gitURL = proxy(gitURL)
	}
	c.src = &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "repo"},
		Spec: sourcev1.GitRepositorySpec{
			URL:       gitURL,
			Interval:  metav1.Duration{Duration: sourceInterval},
			Timeout:   &metav1.Duration{Duration: 10 * time.Second},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		},
	}
	if err := env.Client.Create(context.Background(), c.src); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("app%d", i)
		c.names = append(c.names, name)
		ks := &kustomizev1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: kustomizev1.KustomizationSpec{
				Interval:        metav1.Duration{Duration: time.Hour},
				RetryInterval:   &metav1.Duration{Duration: 5 * time.Second},
				Path:            "./" + name,
				Prune:           true,
				Wait:            true,
				TargetNamespace: ns,
				Timeout:         &metav1.Duration{Duration: time.Minute},
				SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"},
			},
		}
		if i > 0 {
			ks.Spec.DependsOn = []meta.DependencyReference{{Name: c.names[i-1]}}
		}
		if err := env.Client.Create(context.Background(), ks); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *chain) files(value string) map[string]string {
	files := map[string]string{}
	for i := range c.n {
		name := fmt.Sprintf("app%d", i)
		files[name+"/cm.yaml"] = fmt.Sprintf(configMap, name, value)
		files[name+"/deploy.yaml"] = fmt.Sprintf(deployment, name)
	}
	return files
}

// commit changes every app's value and returns the new revision.
func (c *chain) commit(value string) string {
	c.t.Helper()
	h := c.repo.Commit("main", c.files(value), "value "+value)
	return "main@sha1:" + h.String()
}

// request asks the GitRepository to fetch now, as `weir reconcile source
// git` does.
func (c *chain) request() {
	c.t.Helper()
	got := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(c.src), got); err != nil {
		c.t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	got.Annotations = map[string]string{meta.ReconcileRequestAnnotation: time.Now().Format(time.RFC3339Nano)}
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		c.t.Fatal(err)
	}
}

// revision is the GitRepository's current artifact revision, or "".
func (c *chain) revision() string {
	got := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(c.src), got); err != nil || got.Status.Artifact == nil {
		return ""
	}
	return got.Status.Artifact.Revision
}

// statuses reads the chain's Kustomizations.
func (c *chain) statuses() []kustomizev1.Kustomization {
	var list kustomizev1.KustomizationList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(c.ns)); err != nil {
		return nil
	}
	return list.Items
}

// readyCount is how many of the chain's Kustomizations are Ready at their
// generation.
func (c *chain) readyCount() int {
	n := 0
	ks := c.statuses()
	for i := range ks {
		k := &ks[i]
		if conditions.IsReady(k) && k.Status.ObservedGeneration == k.Generation {
			n++
		}
	}
	return n
}

// waitConverged waits until every Kustomization of the chain has applied
// the source's current revision and is Ready, and every ConfigMap holds
// value; it returns how long that took.
func (c *chain) waitConverged(value string, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		pending := c.pending(value)
		if len(pending) == 0 {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the chain did not converge on value %q within %s: %s", value, timeout, strings.Join(pending, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pending says what is not yet converged on value.
func (c *chain) pending(value string) []string {
	rev := c.revision()
	var pending []string
	ks := c.statuses()
	if len(ks) != c.n {
		return []string{fmt.Sprintf("%d of %d Kustomizations listed", len(ks), c.n)}
	}
	for i := range ks {
		k := &ks[i]
		if !conditions.IsReady(k) || k.Status.ObservedGeneration != k.Generation || k.Status.LastAppliedRevision != rev || rev == "" {
			pending = append(pending, fmt.Sprintf("%s: %s/%s applied %q (source at %q)", k.Name,
				conditions.GetReason(k, meta.ReadyCondition), conditions.GetMessage(k, meta.ReadyCondition), k.Status.LastAppliedRevision, rev))
		}
	}
	for _, name := range c.names {
		cm := &unstructured.Unstructured{}
		cm.SetAPIVersion("v1")
		cm.SetKind("ConfigMap")
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, cm); err != nil {
			pending = append(pending, fmt.Sprintf("ConfigMap %s: %v", name, err))
			continue
		}
		if v, _, _ := unstructured.NestedString(cm.Object, "data", "key"); v != value {
			pending = append(pending, fmt.Sprintf("ConfigMap %s holds %q", name, v))
		}
	}
	return pending
}

const configMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
data:
  key: "%s"
`

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
        - name: app
          image: example.invalid/app:1
`
