// Package up runs a whole GitOps loop on one machine: a local control
// plane, an in-process Git server that serves a folder of the user's, an
// in-process OCI registry holding the charts found beside it, weir's
// controllers, and the flux-system GitRepository that syncs from it. It is
// the engine of `weir up`.
package up

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	controlplanev1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/control"
	"github.com/weirhq/weir/internal/gatewayapi"
	"github.com/weirhq/weir/internal/gitserver"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/localcluster"
	"github.com/weirhq/weir/internal/manager"
	"github.com/weirhq/weir/internal/ociregistry"
)

// SourceName is the name and namespace of the GitRepository that syncs the
// user's folder, as `flux bootstrap` names it.
const SourceName = "flux-system"

// branch is the branch the folder's snapshots are committed to.
const branch = "main"

// Options configure a session.
type Options struct {
	// Path is the repository folder to serve.
	Path string
	// StateDir keeps the cluster, artifacts and logs; empty means Path/.weir.
	StateDir string
	// Nodes is the number of simulated nodes.
	Nodes int
	// Interval is the GitRepository's interval.
	Interval time.Duration
	// RootPath is the path of the root Kustomization in the folder; empty
	// means found by convention (kubernetes/flux/cluster, then
	// clusters/<name> when there is exactly one).
	RootPath string
	// ReceiverAddr is where the webhook receiver listens; "" means a free
	// port on 127.0.0.1, "0" turns it off.
	ReceiverAddr string
	// AgeKeyFile is an age key file whose keys go into the flux-system/
	// sops-age Secret that Kustomizations name in decryption.secretRef;
	// empty creates none.
	AgeKeyFile string
	// Charts is a folder of Helm chart folders to push to the session's
	// OCI registry; empty means found by convention (see FindCharts).
	Charts string
	// BeforeControllers, when set, is called with the cluster's admin
	// kubeconfig once the control plane runs and Flux's CRDs are
	// installed, before weir's controllers start: a caller that must see
	// every change of the session's objects starts its watches here.
	BeforeControllers func(kubeconfig string) error
}

// AgeSecretName is the Secret holding the age keys, named as in a Flux
// bootstrap.
const AgeSecretName = "sops-age"

// RegistryConfigMapName is the ConfigMap in flux-system that tells
// Kustomizations where the session's OCI registry is, under RegistryKey,
// for postBuild.substituteFrom.
const RegistryConfigMapName = "weir-up"

// RegistryKey is the key of the registry's host:port in the
// RegistryConfigMapName ConfigMap: a Kustomization that lists it
// (optional: true) can write url: oci://${LOCAL_REGISTRY:=ghcr.io}/...
const RegistryKey = "LOCAL_REGISTRY"

// Session is a running local GitOps loop.
type Session struct {
	// Client talks to the local cluster with weir's scheme.
	Client client.Client
	// Kubeconfig is the path of the local cluster's admin kubeconfig.
	Kubeconfig string
	// StateDir is the session's state folder.
	StateDir string
	// RepoURL is where the in-process Git server serves the folder.
	RepoURL string
	// RootPath is the path the flux-system Kustomization applies; empty
	// when the folder has none.
	RootPath string
	// RegistryHost is the host:port of the in-process OCI registry, on
	// 127.0.0.1, as in oci://RegistryHost/charts/<name>.
	RegistryHost string
	// ChartsDir is the folder the charts were pushed from; empty when
	// there was none.
	ChartsDir string
	// ReceiverURL is the base URL of the webhook receiver (Receivers'
	// /hook/ paths); empty when off.
	ReceiverURL string
	// Charts are the charts pushed to the registry, each at
	// oci://RegistryHost/charts/<name>, tagged with its version.
	Charts []ociregistry.Chart

	opts    Options
	cluster *localcluster.Cluster
	repo    *git.Repository
	head    plumbing.Hash
	stop    []func()
}

// Start brings everything up and creates the flux-system GitRepository; it
// returns without waiting for it to be Ready. Stop undoes it.
func Start(ctx context.Context, opts Options) (_ *Session, err error) {
	path, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", opts.Path, err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", opts.Path)
	}
	opts.Path = path
	if opts.Charts != "" {
		if !isDir(opts.Charts) {
			return nil, fmt.Errorf("the charts folder %s is not a folder", opts.Charts)
		}
		if opts.Charts, err = filepath.Abs(opts.Charts); err != nil {
			return nil, fmt.Errorf("resolving %s: %w", opts.Charts, err)
		}
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(path, ".weir")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	s := &Session{StateDir: opts.StateDir, opts: opts}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()

	s.cluster, err = localcluster.Start(ctx, localcluster.Options{StateDir: filepath.Join(opts.StateDir, "cluster"), Nodes: opts.Nodes})
	if err != nil {
		return nil, err
	}
	s.stop = append(s.stop, s.cluster.Stop)
	s.superviseCluster()
	s.Kubeconfig = s.cluster.Kubeconfig
	cfg := s.cluster.RESTConfig()
	if s.Client, err = client.New(cfg, client.Options{Scheme: kube.Scheme()}); err != nil {
		return nil, fmt.Errorf("connecting to the local cluster: %w", err)
	}
	if err := install.Install(ctx, s.Client); err != nil {
		return nil, err
	}
	// The repository's HTTPRoutes and Gateways (the seed's
	// receiver-route.yaml) are checked by the API server like the rest.
	if err := gatewayapi.Install(ctx, s.Client); err != nil {
		return nil, err
	}
	// Before the controllers start, so that none renders with the address
	// of a previous run's registry.
	if err := s.startRegistry(ctx); err != nil {
		return nil, err
	}

	s.repo = gitserver.NewMemoryRepository()
	if s.head, err = gitserver.Snapshot(s.repo, branch, path, "weir up: snapshot of "+filepath.Base(path)); err != nil {
		return nil, fmt.Errorf("reading %s into the Git server: %w", path, err)
	}
	srv := gitserver.New()
	srv.Add("cluster", s.repo)
	srvCtx, cancelSrv := context.WithCancel(context.Background())
	s.stop = append(s.stop, cancelSrv)
	base, err := srv.Start(srvCtx, "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the Git server: %w", err)
	}
	s.RepoURL = base + "/cluster.git"

	if opts.BeforeControllers != nil {
		if err := opts.BeforeControllers(s.Kubeconfig); err != nil {
			return nil, err
		}
	}
	if err := s.startControllers(cfg); err != nil {
		return nil, err
	}
	if err := s.applyAgeKey(ctx); err != nil {
		return nil, err
	}
	if err := s.applySource(ctx); err != nil {
		return nil, err
	}
	if err := s.applyRoot(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// superviseCluster starts again, alone, a control plane component that
// exits while the session runs (see localcluster.Supervise), and notes it
// in the state folder's logs/cluster.log. It stops before the cluster.
func (s *Session) superviseCluster() {
	logDir := filepath.Join(s.StateDir, "logs")
	_ = os.MkdirAll(logDir, 0o755)
	logFile, err := os.OpenFile(filepath.Join(logDir, "cluster.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		logFile = nil
	}
	logf := func(format string, args ...any) {
		if logFile != nil {
			fmt.Fprintf(logFile, time.Now().Format(time.RFC3339)+" "+format+"\n", args...)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.cluster.Supervise(ctx, logf); err != nil {
			logf("%v", err)
		}
	}()
	s.stop = append(s.stop, func() {
		cancel()
		<-done
		if logFile != nil {
			logFile.Close()
		}
	})
}

// FindCharts returns the charts folder of the repository folder path by
// convention: path/charts when it exists, else a charts folder beside path
// (so that examples/cluster finds examples/charts), else "".
func FindCharts(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	for _, dir := range []string{filepath.Join(abs, "charts"), filepath.Join(filepath.Dir(abs), "charts")} {
		if isDir(dir) {
			return dir
		}
	}
	return ""
}

// startRegistry starts the OCI registry, pushes the charts to it and
// writes its address into the weir-up ConfigMap. A new run starts an
// empty registry, on the previous run's port when it is free, and pushes
// again.
func (s *Session) startRegistry(ctx context.Context) error {
	dir := s.opts.Charts
	if dir == "" {
		dir = FindCharts(s.opts.Path)
	}
	// The previous run's port, when free, keeps the OCIRepositories' URLs
	// valid across restarts: nothing fails against a registry that is gone
	// while the Kustomizations catch up with a new address.
	addrFile := filepath.Join(s.opts.StateDir, "registry-addr")
	reg, err := ociregistry.Start(ctx, ociregistry.Options{Addr: lastRegistryAddr(addrFile)})
	if err != nil {
		if reg, err = ociregistry.Start(ctx, ociregistry.Options{}); err != nil {
			return err
		}
	}
	s.stop = append(s.stop, reg.Stop)
	s.RegistryHost = reg.Host
	_ = os.WriteFile(addrFile, []byte(reg.Host), 0o644)
	if dir != "" {
		s.ChartsDir = dir
		if s.Charts, err = reg.PushCharts(ctx, dir); err != nil {
			return fmt.Errorf("pushing the charts of %s to the local registry: %w", dir, err)
		}
	}
	return WriteRegistryConfigMap(ctx, s.Client, s.RegistryHost)
}

// lastRegistryAddr is the loopback address the registry had in the
// previous run on this state folder, "" when unknown.
func lastRegistryAddr(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	addr := strings.TrimSpace(string(b))
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		return ""
	}
	return addr
}

// WriteRegistryConfigMap creates or updates the RegistryConfigMapName
// ConfigMap in flux-system (creating the namespace if needed) with host
// under RegistryKey, as weir up does for its registry, so that
// Kustomizations listing it in postBuild.substituteFrom pull from host.
func WriteRegistryConfigMap(ctx context.Context, c client.Client, host string) error {
	if err := ensureNamespace(ctx, c); err != nil {
		return err
	}
	obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: SourceName, Name: RegistryConfigMapName}}
	_, err := controllerutil.CreateOrPatch(ctx, c, obj, func() error {
		if obj.Data == nil {
			obj.Data = map[string]string{}
		}
		obj.Data[RegistryKey] = host
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing the registry's address into the %s/%s ConfigMap: %w", SourceName, RegistryConfigMapName, err)
	}
	return nil
}

// ensureNamespace creates the flux-system namespace unless it is there.
func ensureNamespace(ctx context.Context, c client.Client) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SourceName}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", SourceName, err)
	}
	return nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// startControllers runs weir's manager in this process, its logs written
// to logs/weir.log in the state folder.
func (s *Session) startControllers(cfg *rest.Config) error {
	logDir := filepath.Join(s.StateDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("creating the log folder: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(logDir, "weir.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the controller log: %w", err)
	}
	opts := manager.DefaultOptions()
	opts.MetricsAddr = "0"
	opts.HealthAddr = "0"
	opts.LeaderElect = false
	opts.StoragePath = filepath.Join(s.StateDir, "artifacts")
	opts.StorageAddr = "127.0.0.1:0"
	opts.ReceiverAddr = s.opts.ReceiverAddr
	if opts.ReceiverAddr == "" {
		opts.ReceiverAddr = "127.0.0.1:0"
	}
	opts.Logger = zap.New(zap.WriteTo(logFile), zap.Level(zapcore.InfoLevel))
	// A FluxInstance of the repository syncs from this session's Git
	// server, at its own path, not from the remote it names.
	opts.InstanceSyncOverride = func(sync *controlplanev1.Sync) {
		sync.Kind = sourcev1.GitRepositoryKind
		sync.URL = s.RepoURL
		sync.Ref = "refs/heads/" + branch
		sync.PullSecret = ""
		sync.Provider = ""
		sync.Interval = &metav1.Duration{Duration: s.opts.Interval}
	}
	m, err := manager.New(cfg, opts)
	if err != nil {
		logFile.Close()
		return err
	}
	s.ReceiverURL = m.ReceiverURL
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Start(ctx); err != nil {
			fmt.Fprintf(logFile, "controller manager stopped: %v\n", err)
		}
	}()
	s.stop = append(s.stop, func() {
		cancel()
		<-done
		logFile.Close()
	})
	return nil
}

// applyAgeKey creates or updates the sops-age Secret from the age key
// file. The key never leaves the Secret and the file: it is not logged.
func (s *Session) applyAgeKey(ctx context.Context) error {
	if s.opts.AgeKeyFile == "" {
		return nil
	}
	key, err := os.ReadFile(s.opts.AgeKeyFile)
	if err != nil {
		return fmt.Errorf("reading the age key file: %w", err)
	}
	if !strings.Contains(string(key), "AGE-SECRET-KEY-") {
		return fmt.Errorf("%s holds no age secret key (a line starting with AGE-SECRET-KEY-)", s.opts.AgeKeyFile)
	}
	if err := ensureNamespace(ctx, s.Client); err != nil {
		return err
	}
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: SourceName, Name: AgeSecretName}}
	_, err = controllerutil.CreateOrPatch(ctx, s.Client, obj, func() error {
		obj.Type = corev1.SecretTypeOpaque
		obj.Data = map[string][]byte{"age.agekey": key}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating the %s/%s Secret: %w", SourceName, AgeSecretName, err)
	}
	return nil
}

// applySource creates or updates the flux-system GitRepository.
func (s *Session) applySource(ctx context.Context) error {
	obj := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: SourceName, Name: SourceName}}
	_, err := controllerutil.CreateOrPatch(ctx, s.Client, obj, func() error {
		obj.Spec.URL = s.RepoURL
		obj.Spec.Interval = metav1.Duration{Duration: s.opts.Interval}
		obj.Spec.Reference = &sourcev1.GitRepositoryRef{Branch: branch}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating the %s GitRepository: %w", SourceName, err)
	}
	return nil
}

// FindRoot returns the root path of the folder by convention, "" when
// there is none.
func FindRoot(dir string) string {
	if fi, err := os.Stat(filepath.Join(dir, "kubernetes", "flux", "cluster")); err == nil && fi.IsDir() {
		return "./kubernetes/flux/cluster"
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "clusters")); err == nil {
		var dirs []string
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, e.Name())
			}
		}
		if len(dirs) == 1 {
			return "./clusters/" + dirs[0]
		}
	}
	return ""
}

// applyRoot creates or updates the flux-system Kustomization of the root
// path, as `flux bootstrap` does; without a root only the source syncs.
func (s *Session) applyRoot(ctx context.Context) error {
	root := s.opts.RootPath
	if root == "" {
		root = FindRoot(s.opts.Path)
	}
	if root == "" {
		return nil
	}
	if fi, err := os.Stat(filepath.Join(s.opts.Path, root)); err != nil || !fi.IsDir() {
		return fmt.Errorf("root path %s is not a folder of %s", root, s.opts.Path)
	}
	s.RootPath = root
	obj := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: SourceName, Name: SourceName}}
	_, err := controllerutil.CreateOrPatch(ctx, s.Client, obj, func() error {
		obj.Spec.Interval = metav1.Duration{Duration: 10 * time.Minute}
		obj.Spec.Path = root
		obj.Spec.Prune = true
		obj.Spec.SourceRef = kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: SourceName}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating the %s Kustomization: %w", SourceName, err)
	}
	return nil
}

// Converged is what WaitAllReady found Ready.
type Converged struct {
	// Kustomizations are every Kustomization of the cluster, suspended
	// ones included.
	Kustomizations []kustomizev1.Kustomization
	// HelmReleases are every HelmRelease of the cluster, suspended ones
	// included.
	HelmReleases []helmv2.HelmRelease
}

// WaitAllReady waits until every Kustomization and every HelmRelease that
// is not suspended is Ready, the Kustomizations of the folder's source with
// its latest snapshot applied and the HelmReleases with their latest spec,
// or fails naming those that are not.
func (s *Session) WaitAllReady(ctx context.Context, timeout time.Duration) (*Converged, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := branch + "@sha1:" + s.head.String()
	var pending []string
	for {
		var ks kustomizev1.KustomizationList
		var hrs helmv2.HelmReleaseList
		if err := s.Client.List(ctx, &ks); err == nil && len(ks.Items) > 0 {
			pending = pending[:0]
			for i := range ks.Items {
				k := &ks.Items[i]
				if k.Spec.Suspend {
					continue
				}
				// Only Kustomizations of the folder's source must have
				// applied its latest snapshot; others need only be Ready.
				if !conditions.IsReady(k) || (fromFolder(k) && k.Status.LastAppliedRevision != want) {
					pending = append(pending, notReady(kustomizev1.KustomizationKind, k))
				}
			}
			if err := s.Client.List(ctx, &hrs); err != nil {
				pending = append(pending, fmt.Sprintf("listing HelmReleases: %v", err))
			}
			for i := range hrs.Items {
				hr := &hrs.Items[i]
				if hr.Spec.Suspend {
					continue
				}
				// A Ready condition of an older spec does not count.
				if !conditions.IsReady(hr) || hr.Status.ObservedGeneration != hr.Generation {
					pending = append(pending, notReady(helmv2.HelmReleaseKind, hr))
				}
			}
			if len(pending) == 0 {
				return &Converged{Kustomizations: ks.Items, HelmReleases: hrs.Items}, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("not Ready within %s:\n  %s", timeout, strings.Join(pending, "\n  "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// notReady names obj with its kind and Ready message, "pending" when it
// has none yet.
func notReady(kind string, obj conditions.Getter) string {
	msg := conditions.GetMessage(obj, meta.ReadyCondition)
	if msg == "" {
		msg = "pending"
	}
	return kind + " " + obj.GetNamespace() + "/" + obj.GetName() + ": " + msg
}

// WaitReady waits until the flux-system GitRepository holds the folder's
// latest snapshot, or fails with its Ready message.
func (s *Session) WaitReady(ctx context.Context, timeout time.Duration) (*sourcev1.GitRepository, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := branch + "@sha1:" + s.head.String()
	var last *sourcev1.GitRepository
	for {
		obj := &sourcev1.GitRepository{}
		if err := s.Client.Get(ctx, client.ObjectKey{Namespace: SourceName, Name: SourceName}, obj); err == nil {
			last = obj
			if obj.Status.Artifact != nil && obj.Status.Artifact.Revision == want && conditions.IsReady(obj) {
				return obj, nil
			}
		}
		select {
		case <-ctx.Done():
			if last != nil {
				if msg := conditions.GetMessage(last, meta.ReadyCondition); msg != "" {
					return last, fmt.Errorf("the %s GitRepository is not Ready: %s", SourceName, msg)
				}
			}
			return last, fmt.Errorf("the %s GitRepository was not Ready within %s", SourceName, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Watch commits the folder's changes to the Git server every period and
// asks for a reconcile of the source when it moved, until ctx ends. changed
// is called with each new commit.
func (s *Session) Watch(ctx context.Context, period time.Duration, changed func(plumbing.Hash)) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		h, err := gitserver.Snapshot(s.repo, branch, s.opts.Path, "weir up: change in "+filepath.Base(s.opts.Path))
		if err != nil {
			return fmt.Errorf("reading %s: %w", s.opts.Path, err)
		}
		if h == s.head {
			continue
		}
		s.head = h
		obj := &sourcev1.GitRepository{}
		if err := s.Client.Get(ctx, client.ObjectKey{Namespace: SourceName, Name: SourceName}, obj); err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return fmt.Errorf("reading the %s GitRepository: %w", SourceName, err)
		}
		if _, err := control.RequestReconcile(ctx, s.Client, obj); err != nil && !errors.Is(err, control.ErrSuspended) {
			return err
		}
		if changed != nil {
			changed(h)
		}
	}
}

// RESTConfig is an admin connection to the session's cluster.
func (s *Session) RESTConfig() *rest.Config { return s.cluster.RESTConfig() }

// Stop stops the controllers, the Git server, the registry and the
// cluster, in that order. The state folder keeps the cluster's data for the next Start.
func (s *Session) Stop() {
	for i := len(s.stop) - 1; i >= 0; i-- {
		s.stop[i]()
	}
	s.stop = nil
}
