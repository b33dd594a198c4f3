// Package manager builds weir's controller manager: one controller-runtime
// manager that holds every reconciler, with leader election, sharding by
// label, Prometheus metrics, health probes and the artifact server.
package manager

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/metrics"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmanager "sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	controlplanev1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/cosign"
	"github.com/weirhq/weir/internal/depgraph"
	"github.com/weirhq/weir/internal/helm"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/instance"
	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/kustomize"
	"github.com/weirhq/weir/internal/lifecycle"
	"github.com/weirhq/weir/internal/notify/alert"
	"github.com/weirhq/weir/internal/notify/event"
	"github.com/weirhq/weir/internal/notify/receiver"
	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/source/artifactgenerator"
	"github.com/weirhq/weir/internal/source/bucket"
	"github.com/weirhq/weir/internal/source/gitrepository"
	"github.com/weirhq/weir/internal/source/helmchart"
	"github.com/weirhq/weir/internal/source/helmrepository"
	"github.com/weirhq/weir/internal/source/oci"
)

// Options configure the manager. The zero value is not useful: start from
// DefaultOptions.
type Options struct {
	// MetricsAddr serves Prometheus metrics at /metrics; "0" turns it off.
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz; "0" turns it off.
	HealthAddr string
	// PprofAddr serves Go's profiles at /debug/pprof/ on a loopback
	// address; empty turns it off.
	PprofAddr string
	// LeaderElect makes replicas elect one leader that reconciles.
	LeaderElect bool
	// LeaderElectionNamespace holds the lease; empty means the namespace
	// weir runs in, or flux-system outside a cluster.
	LeaderElectionNamespace string
	// LeaderElectionID names the lease. With a WatchLabelSelector, a hash
	// of the selector is appended, as Flux does, so that shards never
	// compete for one lease.
	LeaderElectionID string
	// Concurrent is the number of objects each controller reconciles at once.
	Concurrent int
	// Namespace limits the watch to one namespace; empty watches all.
	Namespace string
	// WatchLabelSelector limits the watch to objects matching it, to run
	// shards as Flux does (sharding.fluxcd.io/key).
	WatchLabelSelector string
	// StoragePath is the folder that holds artifacts.
	StoragePath string
	// StorageAddr is where the artifact server listens.
	StorageAddr string
	// ReceiverAddr is where the webhook receiver listens (Flux's :9292 in
	// the cluster); "" or "0" turns it off.
	ReceiverAddr string
	// StorageAdvAddr is the host:port written into artifact URLs; empty
	// means derived from StorageAddr (the hostname when it listens on all
	// interfaces).
	StorageAdvAddr string
	// ArtifactMaxSize caps one artifact, in bytes; 0 means no cap.
	ArtifactMaxSize int64
	// ArtifactKeep is the number of artifacts kept per source.
	ArtifactKeep int
	// NoCrossNamespaceRefs refuses references to sources and dependencies
	// in other namespaces.
	NoCrossNamespaceRefs bool
	// NoRemoteBases refuses kustomize remote bases.
	NoRemoteBases bool
	// DefaultServiceAccount is impersonated by Kustomizations and
	// HelmReleases that name no serviceAccountName; empty applies with
	// weir's own identity.
	DefaultServiceAccount string
	// SigstoreTrustedRoot is the path of a Sigstore trusted_root.json that
	// keyless signatures (spec.verify without secretRef) are checked
	// against, read again when it changes; empty uses the public-good
	// instance's, fetched from Sigstore's TUF repository.
	SigstoreTrustedRoot string
	// DisableChartDigestTracking is helm-controller's feature gate: the
	// version of a chart from an OCIRepository is not suffixed with its
	// digest, and a tag pushed again does not upgrade the release.
	DisableChartDigestTracking bool
	// Components are the Flux controllers whose reconcilers run
	// (source-controller, kustomize-controller, helm-controller,
	// notification-controller, source-watcher); empty runs all. The FluxInstance
	// controller always runs.
	Components []string
	// InCluster, when not nil, says weir runs in the cluster as installed
	// with these options (a FluxInstance reports and may shape them).
	InCluster *install.Options
	// ManageInstallation lets a FluxInstance apply weir's in-cluster
	// objects when InCluster is set.
	ManageInstallation bool
	// InstanceSyncOverride rewrites a FluxInstance's spec.sync before it
	// is applied (weir up points it at its own Git server).
	InstanceSyncOverride func(*controlplanev1.Sync)
	// Logger receives the manager's and controllers' logs.
	Logger logr.Logger
}

// runs tells whether the reconcilers of a Flux controller run.
func (o Options) runs(component string) bool {
	return len(o.Components) == 0 || slices.Contains(o.Components, component)
}

// KnownComponents are the Flux controllers weir has the reconcilers of.
var KnownComponents = []string{"source-controller", "kustomize-controller", "helm-controller", "notification-controller", "source-watcher"}

// Feature gates of `weir controller --feature-gates`, named as Flux's.
const (
	// FeatureDisableChartDigestTracking sets DisableChartDigestTracking.
	FeatureDisableChartDigestTracking = "DisableChartDigestTracking"
)

// FeatureGates are the feature gates weir knows, with their defaults.
func FeatureGates() map[string]bool {
	return map[string]bool{FeatureDisableChartDigestTracking: false}
}

// DefaultOptions are the defaults of `weir controller`: Flux's addresses
// and storage path, and kustomize-controller's concurrency.
func DefaultOptions() Options {
	return Options{
		MetricsAddr:      ":8080",
		HealthAddr:       ":9440",
		LeaderElect:      true,
		LeaderElectionID: "weir-leader-election",
		Concurrent:       4,
		StoragePath:      "/data",
		StorageAddr:      ":9090",
		ArtifactMaxSize:  50 << 20,
		ArtifactKeep:     2,
	}
}

// Run builds the manager, registers every controller and blocks until ctx
// is done or the manager fails.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	m, err := New(cfg, opts)
	if err != nil {
		return err
	}
	return m.Start(ctx)
}

// Manager is a configured controller manager with its artifact store.
type Manager struct {
	ctrlmanager.Manager
	// Store holds the artifacts of the source controllers.
	Store *artifact.Store
	// StorageURL is the base URL of the artifact server.
	StorageURL string
	// ReceiverURL is the base URL of the webhook receiver, "" when off.
	ReceiverURL string
	// Events carries every event the reconcilers record.
	Events *event.Bus
}

// New builds the manager and registers every controller, without starting.
func New(cfg *rest.Config, opts Options) (*Manager, error) {
	log := opts.Logger
	ctrl.SetLogger(log)
	// Every request of the manager tells whether the API server answers,
	// so that an outage does not grow the controllers' back-off.
	outage := &lifecycle.Outage{Log: log.WithName("api-server")}
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(outage.WrapTransport)

	lenient := &lenientInformers{scheme: kube.Scheme(), namespace: opts.Namespace, selector: opts.WatchLabelSelector,
		log: log.WithName("informers")}
	listErrs := &listErrors{}
	cacheOpts := cache.Options{NewInformer: lenient.NewInformer, DefaultWatchErrorHandler: listErrs.handle,
		// The cached objects keep no managedFields: only the API server
		// reads them, and they grow with every field manager that writes
		// an object (kubectl, the applying Kustomization, the
		// controller's status), for every object watched.
		DefaultTransform: cache.TransformStripManagedFields()}
	if opts.Namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{opts.Namespace: {}}
	}
	if opts.WatchLabelSelector != "" {
		sel, err := labels.Parse(opts.WatchLabelSelector)
		if err != nil {
			return nil, fmt.Errorf("--watch-label-selector %q is not a label selector: %w", opts.WatchLabelSelector, err)
		}
		cacheOpts.ByObject = map[client.Object]cache.ByObject{
			&sourcev1.GitRepository{}:    {Label: sel},
			&sourcev1.OCIRepository{}:    {Label: sel},
			&sourcev1.Bucket{}:           {Label: sel},
			&sourcev1.HelmRepository{}:   {Label: sel},
			&sourcev1.HelmChart{}:        {Label: sel},
			&kustomizev1.Kustomization{}: {Label: sel},
			&helmv2.HelmRelease{}:        {Label: sel},
			&swapi.ArtifactGenerator{}:   {Label: sel},
		}
	}
	if err := checkLoopback(opts.PprofAddr); err != nil {
		return nil, err
	}
	leNamespace := opts.LeaderElectionNamespace
	if leNamespace == "" {
		leNamespace = runtimeNamespace()
	}
	listener, advURL, err := listenStorage(opts.StorageAddr, opts.StorageAdvAddr)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: kube.Scheme(),
		Cache:  cacheOpts,
		// Secrets and ConfigMaps are read when needed, not cached: weir
		// needs no list or watch on them, and they stay out of memory.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}}}},
		// The client records what it writes, so that each reconcile reads
		// its object from the cache once the cache holds the previous
		// reconcile's writes, and from the API server until then.
		NewClient: func(cfg *rest.Config, o client.Options) (client.Client, error) {
			c, err := client.New(cfg, o)
			if err != nil {
				return nil, err
			}
			return lifecycle.TrackWrites(c), nil
		},
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:        opts.HealthAddr,
		PprofBindAddress:              opts.PprofAddr,
		LeaderElection:                opts.LeaderElect,
		LeaderElectionID:              leaseName(opts.LeaderElectionID, opts.WatchLabelSelector),
		LeaderElectionNamespace:       leNamespace,
		LeaderElectionReleaseOnCancel: true,
		// One process may build several managers (weir up, tests); the
		// controller names repeat by design.
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
		Logger:     log,
	})
	if err != nil {
		listener.Close()
		return nil, fmt.Errorf("creating the controller manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		listener.Close()
		return nil, fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		listener.Close()
		return nil, fmt.Errorf("adding the readiness check: %w", err)
	}
	started := &controllersStarted{}
	if err := mgr.Add(started); err != nil {
		listener.Close()
		return nil, fmt.Errorf("adding the readiness check: %w", err)
	}
	if err := mgr.AddReadyzCheck("controllers", started.check(mgr, opts.LeaderElect)); err != nil {
		listener.Close()
		return nil, fmt.Errorf("adding the readiness check: %w", err)
	}
	for _, k := range reconciledKinds {
		if !opts.runs(k.component) {
			continue // no informer for a kind nobody here reconciles
		}
		if err := mgr.AddReadyzCheck(k.check, cacheSynced(mgr, opts.LeaderElect, k.obj, listErrs)); err != nil {
			listener.Close()
			return nil, fmt.Errorf("adding the readiness check: %w", err)
		}
	}
	dyn, err := dynamic.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		listener.Close()
		return nil, fmt.Errorf("creating the dynamic client: %w", err)
	}
	lenient.dynamic, lenient.mapper = dyn, mgr.GetRESTMapper

	// A tree larger than a render reads fails at its source, naming its
	// largest files, rather than in every Kustomization of it.
	store := &artifact.Store{Root: opts.StoragePath, BaseURL: advURL, MaxSize: opts.ArtifactMaxSize, MaxTreeSize: render.MaxSourceSize, Keep: opts.ArtifactKeep}
	if err := os.MkdirAll(opts.StoragePath, 0o755); err != nil {
		listener.Close()
		return nil, fmt.Errorf("creating the artifact folder %s: %w", opts.StoragePath, err)
	}
	if err := mgr.Add(&storageServer{listener: listener, handler: store.Handler()}); err != nil {
		listener.Close()
		return nil, fmt.Errorf("adding the artifact server: %w", err)
	}
	if pl := newPodLabel(mgr.GetClient(), log.WithName("leader-label")); pl != nil {
		// A replica that starts is not the leader yet: a label left by an
		// earlier run of this pod goes before anything else.
		unset, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := pl.set(unset, false)
		cancel()
		if err != nil {
			log.Error(err, "removing a stale leader label")
		}
		if err := mgr.Add(pl); err != nil {
			listener.Close()
			return nil, fmt.Errorf("adding the leader label: %w", err)
		}
	}

	// Every event a reconciler records is also published on the bus, for
	// the Alerts.
	bus := &event.Bus{}
	instanceName, _ := os.Hostname()
	if p := os.Getenv("POD_NAME"); p != "" {
		instanceName = p
	}
	recorder := func(controller string) record.EventRecorder {
		return &event.Recorder{Inner: mgr.GetEventRecorderFor(controller), Bus: bus, Scheme: kube.Scheme(),
			Controller: controller, Instance: instanceName}
	}
	if opts.runs("source-controller") {
		gitOpts := gitrepository.Options{Concurrent: opts.Concurrent, Outage: outage}
		if err := (&gitrepository.Reconciler{
			Client:   mgr.GetClient(),
			Store:    store,
			Recorder: recorder(gitrepository.ControllerName),
			Metrics:  sharedMetrics(),
		}).SetupWithManager(mgr, gitOpts); err != nil {
			return nil, fmt.Errorf("setting up the GitRepository controller: %w", err)
		}
		sigstoreRoots := &cosign.Roots{File: opts.SigstoreTrustedRoot}
		if err := (&oci.Reconciler{
			Client:        mgr.GetClient(),
			Store:         store,
			Recorder:      recorder(oci.ControllerName),
			Metrics:       sharedMetrics(),
			SigstoreRoots: sigstoreRoots,
		}).SetupWithManager(mgr, oci.Options{Concurrent: opts.Concurrent, Outage: outage}); err != nil {
			return nil, fmt.Errorf("setting up the OCIRepository controller: %w", err)
		}
		if err := (&bucket.Reconciler{
			Client:   mgr.GetClient(),
			Store:    store,
			Recorder: recorder(bucket.ControllerName),
			Metrics:  sharedMetrics(),
		}).SetupWithManager(mgr, bucket.Options{Concurrent: opts.Concurrent, Outage: outage}); err != nil {
			return nil, fmt.Errorf("setting up the Bucket controller: %w", err)
		}
		if err := (&helmrepository.Reconciler{
			Client:   mgr.GetClient(),
			Store:    store,
			Recorder: recorder(helmrepository.ControllerName),
			Metrics:  sharedMetrics(),
		}).SetupWithManager(mgr, helmrepository.Options{Concurrent: opts.Concurrent, Outage: outage}); err != nil {
			return nil, fmt.Errorf("setting up the HelmRepository controller: %w", err)
		}
		if err := (&helmchart.Reconciler{
			Client:        mgr.GetClient(),
			Store:         store,
			Recorder:      recorder(helmchart.ControllerName),
			Metrics:       sharedMetrics(),
			SigstoreRoots: sigstoreRoots,
		}).SetupWithManager(mgr, helmchart.Options{Concurrent: opts.Concurrent, Outage: outage}); err != nil {
			return nil, fmt.Errorf("setting up the HelmChart controller: %w", err)
		}
	}
	if opts.runs("source-watcher") {
		if err := (&artifactgenerator.Reconciler{
			Client:               mgr.GetClient(),
			Store:                store,
			Recorder:             recorder(artifactgenerator.ControllerName),
			NoCrossNamespaceRefs: opts.NoCrossNamespaceRefs,
		}).SetupWithManager(mgr, artifactgenerator.Options{Concurrent: opts.Concurrent, Outage: outage}); err != nil {
			return nil, fmt.Errorf("setting up the ArtifactGenerator controller: %w", err)
		}
	}
	graph := &depgraph.Graph{}
	if opts.runs("kustomize-controller") {
		if err := (&kustomize.Reconciler{
			Client:                mgr.GetClient(),
			Store:                 store,
			Graph:                 graph,
			Recorder:              recorder(kustomize.ControllerName),
			Metrics:               sharedMetrics(),
			NoCrossNamespaceRefs:  opts.NoCrossNamespaceRefs,
			NoRemoteBases:         opts.NoRemoteBases,
			DefaultServiceAccount: opts.DefaultServiceAccount,
		}).SetupWithManager(mgr, kustomize.Options{Concurrent: opts.Concurrent, Outage: outage}); err != nil {
			return nil, fmt.Errorf("setting up the Kustomization controller: %w", err)
		}
	}
	if opts.runs("helm-controller") {
		if err := (&helm.Reconciler{
			Client:                mgr.GetClient(),
			Store:                 store,
			Graph:                 graph,
			Recorder:              recorder(helm.ControllerName),
			Metrics:               sharedMetrics(),
			NoCrossNamespaceRefs:  opts.NoCrossNamespaceRefs,
			DefaultServiceAccount: opts.DefaultServiceAccount,

			DisableChartDigestTracking: opts.DisableChartDigestTracking,
		}).SetupWithManager(mgr, helm.Options{Concurrent: opts.Concurrent, Outage: outage}); err != nil {
			return nil, fmt.Errorf("setting up the HelmRelease controller: %w", err)
		}
	}
	disco, err := discovery.NewDiscoveryClientForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		listener.Close()
		return nil, fmt.Errorf("creating the discovery client: %w", err)
	}
	if err := (&instance.Reconciler{
		Client:             mgr.GetClient(),
		Recorder:           recorder(instance.ControllerName),
		InCluster:          opts.InCluster,
		ManageInstallation: opts.ManageInstallation,
		SyncOverride:       opts.InstanceSyncOverride,
		ServerVersion: func() (string, error) {
			v, err := disco.ServerVersion()
			if err != nil {
				return "", err
			}
			return v.GitVersion, nil
		},
	}).SetupWithManager(mgr, instance.Options{Concurrent: 1, Outage: outage}); err != nil {
		return nil, fmt.Errorf("setting up the FluxInstance controller: %w", err)
	}
	if err := (&receiver.Reconciler{
		Client:   mgr.GetClient(),
		Recorder: recorder(receiver.ControllerName),
	}).SetupWithManager(context.Background(), mgr, receiver.Options{Concurrent: opts.Concurrent, Outage: outage}); err != nil {
		return nil, fmt.Errorf("setting up the Receiver controller: %w", err)
	}
	receiverURL := ""
	if opts.ReceiverAddr != "" && opts.ReceiverAddr != "0" {
		l, err := receiver.Listen(opts.ReceiverAddr)
		if err != nil {
			return nil, err
		}
		receiverURL = "http://" + l.Addr().String()
		srv := &receiver.Server{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), NoCrossNamespaceRefs: opts.NoCrossNamespaceRefs,
			Log: log.WithName("receiver")}
		if err := mgr.Add(&receiver.Runnable{Listener: l, Handler: srv}); err != nil {
			l.Close()
			return nil, fmt.Errorf("adding the webhook receiver: %w", err)
		}
	}
	if err := mgr.Add(&alert.Dispatcher{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Bus: bus,
		Recorder: mgr.GetEventRecorderFor(receiver.ControllerName), NoCrossNamespaceRefs: opts.NoCrossNamespaceRefs,
		Log: log.WithName("alerts")}); err != nil {
		return nil, fmt.Errorf("adding the alert dispatcher: %w", err)
	}
	return &Manager{Manager: mgr, Store: store, StorageURL: advURL, ReceiverURL: receiverURL, Events: bus}, nil
}

var (
	metricsOnce sync.Once
	metricsRec  *metrics.Recorder
)

// sharedMetrics returns Flux's gotk_* metrics, registered once with
// controller-runtime's registry however many managers a process builds.
func sharedMetrics() *metrics.Recorder {
	metricsOnce.Do(func() {
		metricsRec = metrics.NewRecorder()
		for _, c := range metricsRec.Collectors() {
			_ = ctrlmetrics.Registry.Register(c)
		}
	})
	return metricsRec
}

// checkLoopback refuses a profiling address that is not on loopback:
// profiles show the process's memory and code paths to whoever reads them.
func checkLoopback(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr %q is not host:port: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--pprof-addr %q: profiles are served on loopback only (127.0.0.1:PORT or [::1]:PORT)", addr)
	}
	return nil
}

// leaseName gives each shard its own lease.
func leaseName(id, selector string) string {
	if selector == "" {
		return id
	}
	return fmt.Sprintf("%s-%x", id, sha256.Sum256([]byte(selector)))[:len(id)+1+8]
}

// runtimeNamespace is the namespace weir's pod runs in, or flux-system.
func runtimeNamespace() string {
	if ns := os.Getenv("RUNTIME_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return string(b)
	}
	return "flux-system"
}

// listenStorage opens the artifact server's listener now, so that a port 0
// resolves before any artifact URL is written.
func listenStorage(addr, adv string) (net.Listener, string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listening for the artifact server on %s: %w", addr, err)
	}
	if adv == "" {
		host, _, _ := net.SplitHostPort(addr)
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		switch host {
		case "", "0.0.0.0", "::":
			h, err := os.Hostname()
			if err != nil || h == "" {
				h = "localhost"
			}
			adv = net.JoinHostPort(h, port)
		default:
			adv = net.JoinHostPort(host, port)
		}
	}
	return l, "http://" + adv, nil
}

// storageServer serves artifacts from the leader only: it alone writes
// them, so another replica would answer 404 for a current artifact.
type storageServer struct {
	listener net.Listener
	handler  http.Handler
}

func (s *storageServer) NeedLeaderElection() bool { return true }

func (s *storageServer) Start(ctx context.Context) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving artifacts: %w", err)
	}
	return nil
}
