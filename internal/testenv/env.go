package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/localcluster"
	"github.com/weirhq/weir/internal/manager"
)

// Env is the control plane a test package shares.
type Env struct {
	// Cluster is the running control plane.
	Cluster *localcluster.Cluster
	// Config has admin rights on it.
	Config *rest.Config
	// Client reads and writes with weir's scheme, without a cache.
	Client client.Client
	// Manager runs weir's controllers against the cluster.
	Manager *manager.Manager
	// Logs is what the controllers logged.
	Logs *Logs

	managerOpts []func(*manager.Options)
}

// Main starts a control plane with Flux's CRDs installed and weir's
// controllers running against it, stores it in *env, runs the package's tests and exits with their status. It never
// returns.
//
// A fuzzing run (-test.fuzz, and its workers) gets no control plane: fuzz
// targets test pure functions, and each worker would start one.
func Main(m *testing.M, env **Env, opts ...Option) {
	flag.Parse()
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			os.Exit(m.Run())
		}
	}
	os.Exit(run(m, env, opts))
}

// Option changes what Main sets up.
type Option func(*settings)

type settings struct {
	noControllers   bool
	maxRequestBytes int
	managerOpts     []func(*manager.Options)
}

// WithoutControllers leaves weir's controllers out, for tests that run
// their own manager.
func WithoutControllers() Option { return func(s *settings) { s.noControllers = true } }

// WithEtcdMaxRequestBytes lowers the size of the largest object etcd
// stores (1.5 MiB by default), so that a test reaches the limit with
// fewer objects.
func WithEtcdMaxRequestBytes(n int) Option { return func(s *settings) { s.maxRequestBytes = n } }

// WithManagerOptions changes the options of the controllers Main starts,
// such as the flags of `weir controller` a package's tests need.
func WithManagerOptions(f func(*manager.Options)) Option {
	return func(s *settings) { s.managerOpts = append(s.managerOpts, f) }
}

func run(m *testing.M, env **Env, opts []Option) int {
	var set settings
	for _, o := range opts {
		o(&set)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := start(ctx, localcluster.Options{EtcdMaxRequestBytes: set.maxRequestBytes})
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	defer e.Stop()
	*env = e
	e.managerOpts = set.managerOpts
	if set.noControllers {
		return m.Run()
	}
	stopManager, err := e.StartManager(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	defer func() {
		if err := stopManager(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: manager:", err)
		}
	}()
	*env = e
	return m.Run()
}

// Start starts a control plane in a temporary state folder and installs
// Flux's CRDs.
func Start(ctx context.Context) (*Env, error) { return start(ctx, localcluster.Options{}) }

func start(ctx context.Context, opts localcluster.Options) (*Env, error) {
	dir, err := os.MkdirTemp("", "weir-testenv-")
	if err != nil {
		return nil, fmt.Errorf("creating a state folder: %w", err)
	}
	opts.StateDir, opts.Nodes = dir, 1
	c, err := localcluster.Start(ctx, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cfg := c.RESTConfig()
	cl, err := client.New(cfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		c.Stop()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	if err := install.Install(ctx, cl); err != nil {
		c.Stop()
		os.RemoveAll(dir)
		return nil, err
	}
	return &Env{Cluster: c, Config: cfg, Client: cl}, nil
}

// Stop stops the control plane and removes its state folder.
func (e *Env) Stop() {
	e.Cluster.Stop()
	os.RemoveAll(e.Cluster.StateDir)
}

// Namespace creates a namespace with a random name for one test and deletes
// it when the test ends.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	var name string
	var ns *corev1.Namespace
	for attempt := 0; ; attempt++ {
		name = "test-" + RandomName(10)
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		err := e.Client.Create(context.Background(), ns)
		if err == nil {
			break
		}
		// A name taken, by a namespace still being deleted among others:
		// draw another.
		if !apierrors.IsAlreadyExists(err) || attempt == 4 {
			t.Fatalf("creating namespace %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		_ = e.Client.Delete(context.Background(), ns)
	})
	return name
}

// RandomName returns n random lowercase hex characters.
func RandomName(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
