package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/runtime/features"
	"github.com/fluxcd/pkg/runtime/logger"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/weirhq/weir/internal/cosign"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/manager"
	"github.com/weirhq/weir/internal/ui"
)

func newControllerCommand(g *globalOptions) *cobra.Command {
	opts := manager.DefaultOptions()
	var (
		watchAll bool
		logOpts  logger.Options
		uiOpts   ui.Options
		gates    features.FeatureGates

		manageInstallation bool
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run weir's controllers against a cluster",
		Long: "controller runs every weir controller in one process: GitRepositories and Kustomizations\n" +
			"today, HelmReleases and OCIRepositories as they land. It resolves the cluster like kubectl\n" +
			"(--kubeconfig, KUBECONFIG, in-cluster) and elects a leader unless --leader-elect=false.\n" +
			"With --ui-addr it also serves the web dashboard (docs/dashboard.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !watchAll {
				opts.Namespace = g.namespace
			}
			opts.Logger = logger.NewLogger(logOpts)
			if err := gates.WithLogger(opts.Logger).SupportedFeatures(manager.FeatureGates()); err != nil {
				return fmt.Errorf("--feature-gates: %w", err)
			}
			opts.DisableChartDigestTracking, _ = features.Enabled(manager.FeatureDisableChartDigestTracking)
			for _, c := range opts.Components {
				if !slices.Contains(manager.KnownComponents, c) {
					return fmt.Errorf("--components: weir has no %q; it runs %s", c, strings.Join(manager.KnownComponents, ", "))
				}
			}
			if ns := os.Getenv("RUNTIME_NAMESPACE"); ns != "" {
				// Set by weir's in-cluster Deployment.
				opts.InCluster = &install.Options{Namespace: ns}
				opts.ManageInstallation = manageInstallation
			}
			if opts.SigstoreTrustedRoot == "" {
				opts.SigstoreTrustedRoot = os.Getenv(cosign.TrustedRootEnv)
			}
			cfg, err := g.restConfig()
			if err != nil {
				return err
			}
			if uiOpts.Addr == "" {
				return manager.Run(cmd.Context(), cfg, opts)
			}
			if uiOpts.Token == "" {
				uiOpts.Token = os.Getenv("WEIR_UI_TOKEN")
			}
			uiOpts.Namespace = opts.Namespace
			uiOpts.Logger = opts.Logger.WithName("dashboard")
			return runWithDashboard(cmd.Context(), cfg, opts, uiOpts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.MetricsAddr, "metrics-addr", opts.MetricsAddr, "address of the Prometheus metrics endpoint; 0 turns it off")
	f.StringVar(&opts.HealthAddr, "health-addr", opts.HealthAddr, "address of the /healthz and /readyz probes; 0 turns them off")
	f.StringVar(&opts.PprofAddr, "pprof-addr", "", "loopback address serving Go's profiles at /debug/pprof/, such as 127.0.0.1:6060; empty turns it off")
	f.BoolVar(&opts.LeaderElect, "leader-elect", opts.LeaderElect, "elect a leader among replicas before reconciling")
	f.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease (default: the runtime namespace, or flux-system)")
	f.StringVar(&opts.LeaderElectionID, "leader-election-id", opts.LeaderElectionID, "name of the leader election lease; with --watch-label-selector a hash of the selector is appended")
	f.IntVar(&opts.Concurrent, "concurrent", opts.Concurrent, "number of objects of each kind reconciled at once")
	f.BoolVar(&watchAll, "watch-all-namespaces", true, "watch objects in every namespace; false watches only --namespace")
	f.StringVar(&opts.WatchLabelSelector, "watch-label-selector", "", "watch only objects matching this label selector, e.g. 'sharding.fluxcd.io/key in (shard1)'")
	f.StringVar(&opts.StoragePath, "storage-path", opts.StoragePath, "folder that holds source artifacts")
	f.StringVar(&opts.StorageAddr, "storage-addr", opts.StorageAddr, "address the artifact server listens on")
	f.StringVar(&opts.ReceiverAddr, "receiver-addr", ":9292", "address of the webhook receiver (Receivers' /hook/ paths), Flux's port; 0 turns it off")
	f.StringVar(&opts.StorageAdvAddr, "storage-adv-addr", "", "host:port written into artifact URLs (default: derived from --storage-addr)")
	f.Int64Var(&opts.ArtifactMaxSize, "artifact-max-size", opts.ArtifactMaxSize, "largest artifact in bytes; 0 means no limit")
	f.IntVar(&opts.ArtifactKeep, "artifact-retention-records", opts.ArtifactKeep, "artifacts kept per source")
	f.BoolVar(&opts.NoCrossNamespaceRefs, "no-cross-namespace-refs", false, "refuse sources and dependencies in other namespaces than the object's")
	f.BoolVar(&opts.NoRemoteBases, "no-remote-bases", false, "refuse kustomize remote bases (only files in the source are used)")
	f.StringVar(&opts.DefaultServiceAccount, "default-service-account", "", "service account impersonated by Kustomizations and HelmReleases that name none (default: weir's own identity)")
	f.StringVar(&opts.SigstoreTrustedRoot, "sigstore-trusted-root", "", "Sigstore trusted_root.json that keyless cosign signatures are verified against, for a private Sigstore or an air-gapped cluster (default $"+cosign.TrustedRootEnv+", else the public-good instance's, fetched from its TUF repository)")
	f.StringSliceVar(&opts.Components, "components", nil, "Flux controllers whose reconcilers run, comma-separated (default all: "+strings.Join(manager.KnownComponents, ",")+")")
	f.BoolVar(&manageInstallation, "manage-installation", true, "in the cluster ($RUNTIME_NAMESPACE set), let a FluxInstance apply weir's own Deployment, RBAC, Services and NetworkPolicies")
	f.StringVar(&uiOpts.Addr, "ui-addr", "", "address of the web dashboard, such as 127.0.0.1:9292; empty turns it off. An address other than loopback needs --ui-token")
	f.StringVar(&uiOpts.Token, "ui-token", "", "token the dashboard requires on every request (default $WEIR_UI_TOKEN, which keeps it out of the process list); required when --ui-addr is not loopback")
	f.StringVar(&uiOpts.ImpersonateUser, "ui-impersonate-user", "", "user the dashboard's actions impersonate, so that RBAC decides them (default "+ui.DefaultImpersonateUser+" when --ui-addr is not loopback, else weir's own identity)")
	f.StringSliceVar(&uiOpts.ImpersonateGroups, "ui-impersonate-group", nil, "group of --ui-impersonate-user; repeat for several")
	logOpts.BindFlags(f)
	gates.BindFlags(f)
	return cmd
}

// runWithDashboard runs the controllers and the dashboard until ctx ends or
// either fails, which stops the other.
func runWithDashboard(ctx context.Context, cfg *rest.Config, opts manager.Options, uiOpts ui.Options) error {
	srv, err := ui.New(cfg, uiOpts)
	if err != nil {
		return err
	}
	opts.Logger.Info("dashboard listening", "url", srv.URL())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	uiDone := make(chan error, 1)
	go func() {
		err := srv.Run(ctx)
		cancel()
		uiDone <- err
	}()
	err = manager.Run(ctx, cfg, opts)
	cancel()
	if uiErr := <-uiDone; err == nil {
		err = uiErr
	}
	return err
}
