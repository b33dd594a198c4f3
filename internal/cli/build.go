package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/repo"
	"github.com/weirhq/weir/internal/up"
)

func newBuildCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Render what a Flux object would apply, offline",
	}
	var path, root string
	var offline offlineOptions
	ks := &cobra.Command{
		Use:     "kustomization NAME --path DIR",
		Aliases: []string{"ks"},
		Short:   "Render a Kustomization from local files, with no cluster",
		Long: "build ks renders a Kustomization as weir's controller would: the Kustomization named NAME is\n" +
			"read from the repository's files (the Git root above --path, or --repo), --path is rendered with\n" +
			"its spec (patches, images, targetNamespace, postBuild substitutions from the ConfigMaps and\n" +
			"Secrets its own cluster applies), and the result is printed as YAML with the labels the\n" +
			"controller sets. Same-named Kustomizations are told apart by -n, --kustomization-file,\n" +
			"--cluster and --path. A substituteFrom source that is not in the repository, SOPS-encrypted\n" +
			"with no --age-key-file, or ambiguous leaves its variables as written, listed on stderr\n" +
			"(--strict fails instead). Secret values are masked; no cluster is contacted.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" {
				return fmt.Errorf("--path is required: the local folder of the Kustomization's spec.path")
			}
			root, rel, err := resolvePath(path, root)
			if err != nil {
				return err
			}
			keys, err := offline.ageKeys()
			if err != nil {
				return err
			}
			r, err := openIndexed(root)
			if err != nil {
				return err
			}
			defer saveIndex(r)
			q := repo.Query{Name: args[0], Cluster: offline.cluster, Path: filepath.ToSlash(rel)}
			if cmd.Flags().Changed("namespace") {
				q.Namespace = g.namespace
			}
			if q.File, err = offline.kustomizationFileRel(r); err != nil {
				return err
			}
			built, err := r.Build(cmd.Context(), repo.BuildOptions{Query: q, Keys: keys, Strict: offline.strict, DefaultNamespace: g.namespace})
			if err != nil {
				return err
			}
			out := built.Objects
			w := cmd.OutOrStdout()
			for _, o := range out {
				b, err := yaml.Marshal(o.Object)
				if err != nil {
					return fmt.Errorf("encoding %s/%s: %w", o.GetKind(), o.GetName(), err)
				}
				fmt.Fprintf(w, "---\n%s", b)
			}
			warnUnresolved(cmd.ErrOrStderr(), &built.Report)
			return nil
		},
	}
	ks.Flags().StringVar(&path, "path", "", "local folder to render (the Kustomization's spec.path in your checkout)")
	ks.Flags().StringVar(&root, "repo", "", "root of the repository (default: the Git root above --path)")
	addOfflineFlags(ks, &offline, true)
	cmd.AddCommand(ks, newBuildHelmReleaseCommand(g), newBuildAllCommand())
	return cmd
}

func newBuildHelmReleaseCommand(g *globalOptions) *cobra.Command {
	var o helmRenderOptions
	var fetch chartFetchOptions
	cmd := &cobra.Command{
		Use:     "helmrelease NAME --path DIR",
		Aliases: []string{"hr"},
		Short:   "Render a HelmRelease's chart with its values from local files, with no cluster",
		Long: "build hr renders --path (the folder that holds the HelmRelease) as the Kustomization that applies\n" +
			"it would, takes the HelmRelease NAME from the result, composes its values (spec.values over\n" +
			"valuesFrom ConfigMaps and Secrets found beside it or in the repository) and renders its chart as\n" +
			"an install would: release name and namespace, post-renderers, commonMetadata and Flux's labels.\n" +
			"The chart comes from --chart, from the repository for a GitRepository source, or from the\n" +
			"folder of --charts (default: the charts folder `weir up` pushes) whose Chart.yaml has the name\n" +
			"of the chart's source, else it is fetched from its source into --chart-cache as `weir test` fetches\n" +
			"it (not with --offline). Values are read only from what the HelmRelease's own cluster applies;\n" +
			"SOPS-encrypted ones are decrypted with --age-key-file, never used as ciphertext. Secret values\n" +
			"are masked; hooks are printed, tests are not. The chart sees --kube-version as\n" +
			".Capabilities.KubeVersion.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			var err error
			if o.fetch, err = fetch.fetcher(); err != nil {
				return err
			}
			o.caps.KubeVersion = fetch.kubeVersion
			if cmd.Flags().Changed("namespace") {
				o.namespace = g.namespace
			}
			r, err := renderHelmRelease(cmd.Context(), o)
			var unavailable *chartUnavailableError
			if errors.As(err, &unavailable) && !strings.Contains(err.Error(), "--chart ") {
				return fmt.Errorf("%w; pass --chart with a local copy (for example from `helm pull`)", err)
			}
			if err != nil {
				return err
			}
			defer warnUnresolved(cmd.ErrOrStderr(), r.report)
			if r.stale != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "⚠ chart rendered from the cache: %s\n", r.stale)
			}
			objects, err := releaseObjects(r.release, true)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, obj := range objects {
				b, err := yaml.Marshal(obj.Object)
				if err != nil {
					return fmt.Errorf("encoding %s/%s: %w", obj.GetKind(), obj.GetName(), err)
				}
				fmt.Fprintf(w, "---\n%s", b)
			}
			return nil
		},
	}
	addHelmRenderFlags(cmd, &o)
	fetch.addFlags(cmd)
	return cmd
}

// addHelmRenderFlags binds the flags `build hr` and `diff hr` share.
func addHelmRenderFlags(cmd *cobra.Command, o *helmRenderOptions) {
	cmd.Flags().StringVar(&o.path, "path", "", "local folder that holds the HelmRelease (the spec.path of the Kustomization that applies it)")
	cmd.Flags().StringVar(&o.root, "repo", "", "root of the repository (default: the Git root above --path)")
	cmd.Flags().StringVar(&o.chart, "chart", "", "local chart folder or .tgz to render (default: found in --charts)")
	cmd.Flags().StringVar(&o.charts, "charts", "", "folder of chart folders (default: charts/ in the repository, else beside it, as weir up finds it)")
	addOfflineFlags(cmd, &o.offline, false)
}

// resolvePath makes path and root absolute (root defaulting to the Git
// root above path) and returns path relative to root, refusing a path
// outside it.
func resolvePath(path, root string) (string, string, error) {
	dir, err := filepath.Abs(path)
	if err != nil {
		return "", "", fmt.Errorf("resolving --path: %w", err)
	}
	if root == "" {
		root = gitRoot(dir)
	}
	if root, err = filepath.Abs(root); err != nil {
		return "", "", fmt.Errorf("resolving --repo: %w", err)
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", "", fmt.Errorf("--path %s is not inside the repository %s", path, root)
	}
	return root, rel, nil
}

// gitRoot returns the closest folder at or above dir that is a cluster
// repository's root — one holding .git, or a root Kustomization by weir
// up's convention (kubernetes/flux/cluster, clusters/<name>), so that a
// repository kept inside another, as examples/cluster is, is found — or dir.
func gitRoot(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil || up.FindRoot(d) != "" {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
