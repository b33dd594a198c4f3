package up_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/notify/receiver"
	"github.com/weirhq/weir/internal/up"
)

// TestExampleRepositoryConverges runs the README's main job: the example
// repository, shaped like the seed, reconciled until every Kustomization
// and HelmRelease is Ready, each app a HelmRelease of a chart that weir up
// pushed to its registry from the charts folder beside the repository,
// with cluster settings substituted into the apps' values, the demo SOPS
// Secret decrypted with the demo age key, and every app applied only
// after the apps it depends on were Ready.
func TestExampleRepositoryConverges(t *testing.T) {
	// examples/cluster and examples/charts side by side, as weir up finds
	// them.
	dir := t.TempDir()
	repo := filepath.Join(dir, "cluster")
	for _, name := range []string{"cluster", "charts"} {
		if err := os.CopyFS(filepath.Join(dir, name), os.DirFS(filepath.Join("..", "..", "examples", name))); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	start := time.Now()
	// The watch starts before weir's controllers do, so that it sees
	// every change in the order etcd committed it, however loaded the
	// machine is.
	var order *orderRecorder
	s, err := up.Start(ctx, up.Options{Path: repo, AgeKeyFile: filepath.Join(repo, "age.key"),
		BeforeControllers: func(kubeconfig string) error {
			var err error
			order, err = recordOrder(kubeconfig)
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if s.RootPath != "./kubernetes/flux/cluster" {
		t.Errorf("root found at %q, want ./kubernetes/flux/cluster", s.RootPath)
	}
	if s.ChartsDir != filepath.Join(dir, "charts") {
		t.Errorf("charts pushed from %q, want the charts folder beside the repository", s.ChartsDir)
	}
	if _, err := s.WaitReady(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	all, err := s.WaitAllReady(ctx, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d Kustomizations and %d HelmReleases Ready in %s", len(all.Kustomizations), len(all.HelmReleases), time.Since(start))
	if len(all.Kustomizations) != 15 {
		t.Errorf("%d Kustomizations, want 15 (root, cluster-apps and 13 apps)", len(all.Kustomizations))
	}
	if len(all.HelmReleases) != 13 {
		t.Errorf("%d HelmReleases, want 13 (one per app)", len(all.HelmReleases))
	}
	for _, hr := range all.HelmReleases {
		if hr.Spec.ChartRef == nil || hr.Spec.ChartRef.Kind != sourcev1.OCIRepositoryKind {
			t.Errorf("HelmRelease %s/%s does not take its chart from an OCIRepository", hr.Namespace, hr.Name)
			continue
		}
		src := &sourcev1.OCIRepository{}
		if err := s.Client.Get(ctx, client.ObjectKey{Namespace: hr.Namespace, Name: hr.Spec.ChartRef.Name}, src); err != nil {
			t.Error(err)
			continue
		}
		if !strings.HasPrefix(src.Spec.URL, "oci://"+s.RegistryHost+"/charts/") {
			t.Errorf("OCIRepository %s/%s pulls from %s, not from the session's registry %s", src.Namespace, src.Name, src.Spec.URL, s.RegistryHost)
		}
	}

	seen := order.stop()
	chain := [][2]string{
		{"cilium", "coredns"}, {"coredns", "flux-operator"}, {"flux-operator", "flux-instance"},
		{"flux-instance", "cert-manager"}, {"cert-manager", "envoy-gateway"},
		{"envoy-gateway", "external-dns"}, {"envoy-gateway", "k8s-gateway"},
		{"envoy-gateway", "cloudflare-tunnel"}, {"envoy-gateway", "echo"},
		{"flux-instance", "spegel"}, {"flux-instance", "cloudnative-pg"}, {"flux-instance", "rustfs"},
	}
	for _, edge := range chain {
		dep, dependent := seen[edge[0]], seen[edge[1]]
		if !dep.hasDependent(edge[1]) {
			t.Errorf("%s does not depend on %s in the example", edge[1], edge[0])
		}
		if dep.ready == 0 || dependent.attempted == 0 {
			t.Errorf("%s -> %s: not observed (ready %d, attempted %d)", edge[0], edge[1], dep.ready, dependent.attempted)
			continue
		}
		if dependent.attempted < dep.ready {
			t.Errorf("%s reconciled (event %d) before its dependency %s was Ready (event %d)", edge[1], dependent.attempted, edge[0], dep.ready)
		}
	}

	cm := &corev1.ConfigMap{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "echo-config"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["domain"] != "echo.home.example" || cm.Data["timezone"] != "Europe/Paris" {
		t.Errorf("cluster settings not substituted into the echo release's values: %v", cm.Data)
	}
	// The cert-manager chart's custom resource, installed with its CRD.
	issuer := &unstructured.Unstructured{}
	issuer.SetAPIVersion("cert-manager.example.io/v1")
	issuer.SetKind("ClusterIssuer")
	if err := s.Client.Get(ctx, client.ObjectKey{Name: "demo-acme"}, issuer); err != nil {
		t.Fatal(err)
	}
	if email, _, _ := unstructured.NestedString(issuer.Object, "spec", "acme", "email"); email != "certs@home.example" {
		t.Errorf("the ClusterIssuer's email is %q, want certs@home.example", email)
	}
	secret := &corev1.Secret{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "receiver-token"}, secret); err != nil {
		t.Fatal(err)
	}
	if string(secret.Data["token"]) != "demo-webhook-token" {
		t.Errorf("the demo SOPS Secret was not decrypted: token is %d bytes", len(secret.Data["token"]))
	}
	// The seed's webhook: a Receiver with its decrypted token, served by
	// weir up, and the HTTPRoute to it, stored by the API server.
	route := &unstructured.Unstructured{}
	route.SetAPIVersion("gateway.networking.k8s.io/v1")
	route.SetKind("HTTPRoute")
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "github-webhook"}, route); err != nil {
		t.Errorf("the receiver's HTTPRoute: %v", err)
	} else if hosts, _, _ := unstructured.NestedStringSlice(route.Object, "spec", "hostnames"); len(hosts) != 1 || hosts[0] != "flux-webhook.home.example" {
		t.Errorf("the HTTPRoute's hostnames are %v", hosts)
	}
	rcv := &notificationv1.Receiver{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "github-webhook"}, rcv); err != nil {
		t.Fatal(err)
	}
	if rcv.Status.WebhookPath != receiver.WebhookPath("demo-webhook-token", "github-webhook", "flux-system") || !conditions.IsReady(rcv) {
		t.Fatalf("the Receiver is not Ready at Flux's path: %q %v", rcv.Status.WebhookPath, rcv.Status.Conditions)
	}
	req, err := receiver.TestRequest(rcv, "demo-webhook-token", s.ReceiverURL)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("weir up's receiver answered a signed push with %s", resp.Status)
	}
}

// observed is what a watch saw of one Kustomization: the sequence numbers
// of the first event where it had attempted a revision (its dependencies
// let it through) and where it was Ready.
type observed struct {
	attempted, ready int
	dependsOn        []string
	dependents       []string
}

func (o observed) hasDependent(name string) bool {
	for _, d := range o.dependents {
		if d == name {
			return true
		}
	}
	return false
}

type orderRecorder struct {
	w    watch.Interface
	done chan struct{}
	mu   sync.Mutex
	seen map[string]*observed
}

// recordOrder watches every Kustomization from now on; it must start
// before any Kustomization is reconciled. Events of one watch arrive in
// the order etcd committed them, so their sequence numbers order what
// happened across objects without reading any clock. (A watch started
// later would begin with the objects as they are, listed in name order,
// an order in which nothing happened.)
func recordOrder(kubeconfig string) (*orderRecorder, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		return nil, err
	}
	w, err := c.Watch(context.Background(), &kustomizev1.KustomizationList{})
	if err != nil {
		return nil, err
	}
	r := &orderRecorder{w: w, done: make(chan struct{}), seen: map[string]*observed{}}
	go func() {
		defer close(r.done)
		seq := 0
		for ev := range w.ResultChan() {
			k, ok := ev.Object.(*kustomizev1.Kustomization)
			if !ok {
				continue
			}
			seq++
			r.mu.Lock()
			o := r.seen[k.Name]
			if o == nil {
				o = &observed{}
				r.seen[k.Name] = o
			}
			o.dependsOn = o.dependsOn[:0]
			for _, d := range k.Spec.DependsOn {
				o.dependsOn = append(o.dependsOn, d.Name)
			}
			if o.attempted == 0 && k.Status.LastAttemptedRevision != "" {
				o.attempted = seq
			}
			if o.ready == 0 && conditions.IsReady(k) {
				o.ready = seq
			}
			r.mu.Unlock()
		}
	}()
	return r, nil
}

// stop ends the watch and returns what it saw, with dependents filled in.
func (r *orderRecorder) stop() map[string]observed {
	r.w.Stop()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, o := range r.seen {
		for _, d := range o.dependsOn {
			if dep := r.seen[d]; dep != nil {
				dep.dependents = append(dep.dependents, name)
			}
		}
	}
	out := map[string]observed{}
	for name, o := range r.seen {
		out[name] = *o
	}
	return out
}
