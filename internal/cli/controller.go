package cli

import (
	"github.com/fluxcd/pkg/runtime/logger"
	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/manager"
)

func newControllerCommand(g *globalOptions) *cobra.Command {
	opts := manager.DefaultOptions()
	var (
		watchAll bool
		logOpts  logger.Options
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run weir's controllers against a cluster",
		Long: "controller runs every weir controller in one process: GitRepositories and Kustomizations\n" +
			"today, HelmReleases and OCIRepositories as they land. It resolves the cluster like kubectl\n" +
			"(--kubeconfig, KUBECONFIG, in-cluster) and elects a leader unless --leader-elect=false.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !watchAll {
				opts.Namespace = g.namespace
			}
			cfg, err := kube.Config(g.kubeconfig, g.context)
			if err != nil {
				return err
			}
			opts.Logger = logger.NewLogger(logOpts)
			return manager.Run(cmd.Context(), cfg, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.MetricsAddr, "metrics-addr", opts.MetricsAddr, "address of the Prometheus metrics endpoint; 0 turns it off")
	f.StringVar(&opts.HealthAddr, "health-addr", opts.HealthAddr, "address of the /healthz and /readyz probes; 0 turns them off")
	f.BoolVar(&opts.LeaderElect, "leader-elect", opts.LeaderElect, "elect a leader among replicas before reconciling")
	f.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease (default: the runtime namespace, or flux-system)")
	f.StringVar(&opts.LeaderElectionID, "leader-election-id", opts.LeaderElectionID, "name of the leader election lease; with --watch-label-selector a hash of the selector is appended")
	f.IntVar(&opts.Concurrent, "concurrent", opts.Concurrent, "number of objects of each kind reconciled at once")
	f.BoolVar(&watchAll, "watch-all-namespaces", true, "watch objects in every namespace; false watches only --namespace")
	f.StringVar(&opts.WatchLabelSelector, "watch-label-selector", "", "watch only objects matching this label selector, e.g. 'sharding.fluxcd.io/key in (shard1)'")
	f.StringVar(&opts.StoragePath, "storage-path", opts.StoragePath, "folder that holds source artifacts")
	f.StringVar(&opts.StorageAddr, "storage-addr", opts.StorageAddr, "address the artifact server listens on")
	f.StringVar(&opts.StorageAdvAddr, "storage-adv-addr", "", "host:port written into artifact URLs (default: derived from --storage-addr)")
	f.Int64Var(&opts.ArtifactMaxSize, "artifact-max-size", opts.ArtifactMaxSize, "largest artifact in bytes; 0 means no limit")
	f.IntVar(&opts.ArtifactKeep, "artifact-retention-records", opts.ArtifactKeep, "artifacts kept per source")
	f.BoolVar(&opts.NoCrossNamespaceRefs, "no-cross-namespace-refs", false, "refuse sources and dependencies in other namespaces than the object's")
	f.BoolVar(&opts.NoRemoteBases, "no-remote-bases", false, "refuse kustomize remote bases (only files in the source are used)")
	f.StringVar(&opts.DefaultServiceAccount, "default-service-account", "", "service account impersonated by Kustomizations that name none (default: weir's own identity)")
	logOpts.BindFlags(f)
	return cmd
}
