package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/localcluster"
	"github.com/weirhq/weir/internal/up"
)

func newUpCommand() *cobra.Command {
	var (
		opts    up.Options
		watch   bool
		once    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "up [PATH]",
		Short: "Run a repository on a local control plane, no cluster needed",
		Long: "up starts a real local control plane (etcd, kube-apiserver, controller-manager, scheduler and\n" +
			"simulated nodes), serves PATH (default: the current folder) from an in-process Git server, pushes\n" +
			"the Helm charts of --charts to an in-process OCI registry (its address is LOCAL_REGISTRY in the\n" +
			"ConfigMap flux-system/weir-up), runs weir's controllers and syncs PATH through a flux-system\n" +
			"GitRepository and, when PATH has a root (kubernetes/flux/cluster, clusters/<name> or --path), a\n" +
			"flux-system Kustomization of it. Edits in PATH are picked up while it runs (--watch). The state\n" +
			"under PATH/.weir is kept, so the next run resumes.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = "."
			if len(args) == 1 {
				opts.Path = args[0]
			}
			if !cmd.Flags().Changed("age-key-file") {
				opts.AgeKeyFile = defaultAgeKeyFile(opts.Path)
			}
			return runUp(cmd, opts, watch && !once, once, timeout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.StateDir, "state-dir", "", "folder for the cluster's state, artifacts and logs (default: PATH/.weir)")
	f.IntVar(&opts.Nodes, "nodes", 1, "number of simulated nodes")
	f.BoolVar(&watch, "watch", true, "commit edits in PATH to the local Git server and reconcile them")
	f.StringVar(&opts.RootPath, "path", "", "path of the root Kustomization in PATH (default: found by convention)")
	f.StringVar(&opts.Charts, "charts", "", "folder of Helm chart folders to push to the local OCI registry (default: PATH/charts, else ../charts beside PATH, when there)")
	f.StringVar(&opts.AgeKeyFile, "age-key-file", "", "age key file for the flux-system/sops-age Secret (default: PATH/age.key, else $SOPS_AGE_KEY_FILE)")
	f.BoolVar(&once, "once", false, "stop everything and exit once every Kustomization is Ready")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for every Kustomization to be Ready")
	return cmd
}

func runUp(cmd *cobra.Command, opts up.Options, watch, once bool, timeout time.Duration) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	start := time.Now()
	fmt.Fprintf(out, "► starting a local control plane (kubernetes %s) and weir's controllers\n", localcluster.KubernetesVersion)
	s, err := up.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "► stopping")
		s.Stop()
	}()
	fmt.Fprintf(out, "✔ control plane ready; serving %s at %s\n", opts.Path, s.RepoURL)
	fmt.Fprintf(out, "✔ OCI registry at %s (%s in ConfigMap %s/%s)%s\n", s.RegistryHost, up.RegistryKey, up.SourceName, up.RegistryConfigMapName, describeCharts(s))
	fmt.Fprintf(out, "◎ waiting for GitRepository %s/%s\n", up.SourceName, up.SourceName)
	obj, err := s.WaitReady(ctx, timeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "✔ fetched revision %s in %s\n", obj.Status.Artifact.Revision, time.Since(start).Round(100*time.Millisecond))
	var all *up.Converged
	if s.RootPath != "" {
		fmt.Fprintf(out, "◎ applying %s and every Kustomization and HelmRelease it brings\n", s.RootPath)
		all, err = s.WaitAllReady(ctx, timeout)
		if err != nil {
			_ = printTable(ctx, cmd, s.Kubeconfig, "kustomizations")
			fmt.Fprintln(out)
			_ = printTable(ctx, cmd, s.Kubeconfig, "helmreleases")
			return err
		}
		fmt.Fprintf(out, "✔ %s Ready in %s\n", describeConverged(all), time.Since(start).Round(100*time.Millisecond))
	}
	fmt.Fprintln(out)
	if err := printTable(ctx, cmd, s.Kubeconfig, "sources", "git"); err != nil {
		return err
	}
	if s.RootPath != "" {
		fmt.Fprintln(out)
		if err := printTable(ctx, cmd, s.Kubeconfig, "kustomizations"); err != nil {
			return err
		}
		if len(all.HelmReleases) > 0 {
			fmt.Fprintln(out)
			if err := printTable(ctx, cmd, s.Kubeconfig, "helmreleases"); err != nil {
				return err
			}
		}
	}
	if once {
		return nil
	}
	fmt.Fprintf(out, "\nexport KUBECONFIG=%s\n", s.Kubeconfig)
	if !watch {
		fmt.Fprintln(out, "running; Ctrl-C to stop")
		<-ctx.Done()
		return nil
	}
	fmt.Fprintf(out, "watching %s for changes; Ctrl-C to stop\n", opts.Path)
	return s.Watch(ctx, time.Second, func(h plumbing.Hash) {
		fmt.Fprintf(out, "► change committed as %s, reconciling\n", h.String()[:8])
	})
}

// describeConverged counts what WaitAllReady found Ready: "15
// Kustomizations and 13 HelmReleases", the HelmReleases left out when
// there are none.
func describeConverged(all *up.Converged) string {
	s := plural(len(all.Kustomizations), "Kustomization")
	if len(all.HelmReleases) > 0 {
		s += " and " + plural(len(all.HelmReleases), "HelmRelease")
	}
	return s
}

// plural is "1 Kustomization", "2 Kustomizations".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// describeCharts says which charts the session pushed, from where.
func describeCharts(s *up.Session) string {
	if len(s.Charts) == 0 {
		if s.ChartsDir == "" {
			return "; no charts folder"
		}
		return "; no charts in " + s.ChartsDir
	}
	names := make([]string, len(s.Charts))
	for i, c := range s.Charts {
		names[i] = c.Name + ":" + c.Version
	}
	return fmt.Sprintf("; pushed %s from %s", strings.Join(names, ", "), displayPath(s.ChartsDir))
}

// displayPath is p relative to the current folder when that is shorter.
func displayPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && len(rel) < len(p) {
		return rel
	}
	return p
}

// defaultAgeKeyFile is age.key in the repository folder when it exists,
// else the file SOPS itself reads keys from.
func defaultAgeKeyFile(path string) string {
	if f := filepath.Join(path, "age.key"); fileExists(f) {
		return f
	}
	return os.Getenv("SOPS_AGE_KEY_FILE")
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// printTable prints `weir get WHAT -A` for the local cluster.
func printTable(ctx context.Context, cmd *cobra.Command, kubeconfig string, what ...string) error {
	get := newRootCommand()
	get.SetOut(cmd.OutOrStdout())
	get.SetErr(cmd.ErrOrStderr())
	get.SetArgs(append(append([]string{"get"}, what...), "-A", "--kubeconfig", kubeconfig))
	return get.ExecuteContext(ctx)
}
