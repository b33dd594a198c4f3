package lifecycle_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/lifecycle"
	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.WithoutControllers()) }

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Each read gives what the previous write left, however far behind the
// manager's cache is, and once the cache holds the last write, a read
// costs the API server no request.
func TestFreshReadsTheLastWriteAndAsksTheServerOnlyWhileTheCacheLags(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := env.Namespace(t)

	// The requests that read the object itself (not the cache's list and
	// watch), as the API server receives them.
	var gets atomic.Int64
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/namespaces/"+ns+"/gitrepositories/repo") {
				gets.Add(1)
			}
			return rt.RoundTrip(r)
		})
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 kube.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		NewClient: func(cfg *rest.Config, o client.Options) (client.Client, error) {
			c, err := client.New(cfg, o)
			if err != nil {
				return nil, err
			}
			return lifecycle.TrackWrites(c), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var fresh lifecycle.Fresh
	fresh.Use(mgr)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() { cancel(); <-done }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("the manager's cache did not start")
	}
	// Start the GitRepository informer before the object exists.
	if err := mgr.GetCache().List(ctx, &sourcev1.GitRepositoryList{}, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}

	c := mgr.GetClient()
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "repo"},
		Spec:       sourcev1.GitRepositorySpec{URL: "https://127.0.0.1/repo.git", Interval: metav1.Duration{Duration: time.Hour}},
	}
	if err := c.Create(ctx, repo); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(repo)
	const writes = 40
	for i := range writes {
		var got sourcev1.GitRepository
		if err := fresh.Get(ctx, c, key, &got); err != nil {
			t.Fatal(err)
		}
		if want := strconv.Itoa(i); i > 0 && got.Status.LastHandledReconcileAt != want {
			t.Fatalf("read %d gave the status %q, want %q: the write before it was lost", i, got.Status.LastHandledReconcileAt, want)
		}
		orig := got.DeepCopy()
		got.Status.LastHandledReconcileAt = strconv.Itoa(i + 1)
		if err := c.Status().Patch(ctx, &got, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d reads right after a write: %d went to the API server", writes, gets.Load())

	// Once the cache holds the last write, reads stay in the process.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var cached sourcev1.GitRepository
		if err := mgr.GetCache().Get(ctx, key, &cached); err == nil && cached.Status.LastHandledReconcileAt == strconv.Itoa(writes) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache never showed the last write")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := gets.Load()
	for range 10 {
		var got sourcev1.GitRepository
		if err := fresh.Get(ctx, c, key, &got); err != nil {
			t.Fatal(err)
		}
		if got.Status.LastHandledReconcileAt != strconv.Itoa(writes) {
			t.Fatalf("a read once the cache caught up gave %q, want %q", got.Status.LastHandledReconcileAt, strconv.Itoa(writes))
		}
	}
	if n := gets.Load() - before; n != 0 {
		t.Errorf("%d of 10 reads went to the API server though the cache held the last write", n)
	}

	// A write by another client (a user, another process) is not in the
	// log: the cache is read, and shows it once its watch does.
	var other sourcev1.GitRepository
	if err := env.Client.Get(ctx, key, &other); err != nil {
		t.Fatal(err)
	}
	orig := other.DeepCopy()
	other.Spec.Interval = metav1.Duration{Duration: 2 * time.Hour}
	if err := env.Client.Patch(ctx, &other, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		var got sourcev1.GitRepository
		if err := fresh.Get(ctx, c, key, &got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.Interval.Duration == 2*time.Hour {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reads never showed another client's change")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
