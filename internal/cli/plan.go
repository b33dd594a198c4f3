package cli

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/weirhq/weir/internal/chartfetch"
	"github.com/weirhq/weir/internal/gitrev"
	"github.com/weirhq/weir/internal/helm"
	"github.com/weirhq/weir/internal/plan"
	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/repo"
)

// planOptions are the flags of `weir plan`.
type planOptions struct {
	from, to   string
	root       string
	format     string
	colour     string
	limit      int
	charts     string
	syncRoot   string
	live       bool
	exitCode   bool
	ageKeyFile string
	fetch      chartFetchOptions
	// fetcher fetches charts with no local copy (set from fetch).
	fetcher *chartfetch.Fetcher
}

func newPlanCommand(g *globalOptions) *cobra.Command {
	var o planOptions
	cmd := &cobra.Command{
		Use:   "plan [PATH]",
		Short: "Show what a branch would change: every object created, updated, replaced or pruned",
		Long: "plan renders the repository at PATH (default: the current folder) twice, at --from and at --to,\n" +
			"with no cluster, and compares what each Kustomization and HelmRelease would apply, object by object:\n" +
			"  + create     the object is new\n" +
			"  ~ update     the object changes (its diff is shown)\n" +
			"  -/+ replace  a field the API server does not change in place changed (a selector, a\n" +
			"               StatefulSet's claim templates, a Job's template, a binding's roleRef…): the apply\n" +
			"               fails unless the Kustomization sets force: true\n" +
			"  - prune      the object is deleted: its Kustomization no longer renders it and prunes, or the\n" +
			"               Kustomization itself is deleted (pruned by its parent) and prunes; a chart no\n" +
			"               longer renders it, or its HelmRelease is deleted (uninstalled)\n" +
			"  ! left       the object is no longer rendered but stays in the cluster (prune: false, a\n" +
			"               parent that does not prune, prune: disabled, helm.sh/resource-policy: keep)\n" +
			"An owner that fails to render at --to is reported and prunes nothing, as the controllers do.\n" +
			"--from and --to are Git revisions (a branch, origin/main, a tag, a hash, HEAD~1); --to defaults to\n" +
			"the working tree as it is, uncommitted changes included. Each HelmRelease's chart is rendered from\n" +
			"a local copy or fetched into --chart-cache, as `weir test` does (--offline, --kube-version).\n" +
			"With --cluster, the plan starts from the live cluster instead of --from: the Kustomizations and\n" +
			"HelmReleases it runs, their inventories and Helm releases; each\n" +
			"object of the checkout is dry-run applied on the API server, so the diff is what the apply would\n" +
			"change (defaults and other managers' fields do not show), and an object the server refuses fails\n" +
			"its Kustomization, as the apply would. Secret values are masked; a changed value still shows as an\n" +
			"update naming its key. Output: --format text (colours on a terminal), json, or markdown sized for a\n" +
			"pull request comment (a summary table, a collapsed section per object, at most --limit characters).",
		Example: "  weir plan --from origin/main\n" +
			"  weir plan --from main --to my-branch ~/home-ops\n" +
			"  weir plan --from origin/main --to HEAD --format markdown > plan.md\n" +
			"  weir plan --cluster --context production",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runPlan(cmd, g, dir, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "HEAD", "the Git revision the cluster runs now")
	f.StringVar(&o.to, "to", "", "the Git revision to plan (default: the working tree, uncommitted changes included)")
	f.StringVar(&o.root, "repo", "", "root of the Flux repository (default: the Git root above PATH, or the sync root's repository)")
	f.StringVar(&o.format, "format", "text", "text, json or markdown")
	f.StringVar(&o.colour, "color", "auto", "colour the text diff: auto (on a terminal, unless NO_COLOR is set), always or never")
	f.IntVar(&o.limit, "limit", plan.CommentLimit, "the most characters --format markdown writes (GitHub's comment limit by default)")
	f.StringVar(&o.charts, "charts", "", "folder of chart folders for HelmReleases whose chart is not in the repository (default: the charts folder `weir up` pushes)")
	f.StringVar(&o.syncRoot, "sync-root", "", "plan only this cluster of the repository, by name (main) or sync root folder (kubernetes/clusters/main)")
	f.BoolVar(&o.live, "cluster", false, "plan against the live cluster of the current kubeconfig context instead of --from: each object is dry-run applied on the API server and compared with what the cluster holds (its inventories, its Helm releases)")
	f.BoolVar(&o.exitCode, "exit-code", false, "exit 2 when the plan changes something (0 when it changes nothing, 1 on errors)")
	f.StringVar(&o.ageKeyFile, "age-key-file", "", "age key file to decrypt SOPS-encrypted values (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY)")
	o.fetch.addFlags(cmd)
	return cmd
}

func runPlan(cmd *cobra.Command, g *globalOptions, dir string, o planOptions) error {
	switch o.format {
	case "text", "json", "markdown":
	default:
		return fmt.Errorf("--format %q: use text, json or markdown", o.format)
	}
	switch o.colour {
	case "auto", "always", "never":
	default:
		return fmt.Errorf("--color %q: use auto, always or never", o.colour)
	}
	offline := offlineOptions{cluster: o.syncRoot, ageKeyFile: o.ageKeyFile}
	fetcher, err := o.fetch.fetcher()
	if err != nil {
		return err
	}
	o.fetcher = fetcher
	root := o.root
	if root == "" {
		root = gitRoot(mustAbs(dir))
	}
	if o.live {
		return runLivePlan(cmd, g, root, o, offline)
	}
	git, rel, err := gitrev.OpenAt(root)
	if err != nil {
		return err
	}
	from, err := git.Resolve(o.from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	fromOwners, err := ownersAt(cmd, git, from, rel, o, offline)
	if err != nil {
		return fmt.Errorf("rendering %s: %w", o.from, err)
	}
	toLabel := "working tree"
	var toOwners []*plan.Owner
	if o.to == "" {
		toOwners, err = planOwners(cmd, root, o, offline, nil)
	} else {
		var to *gitrev.Commit
		if to, err = git.Resolve(o.to); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		toLabel = o.to + " (" + to.Short() + ")"
		toOwners, err = ownersAt(cmd, git, to, rel, o, offline)
	}
	if err != nil {
		return fmt.Errorf("rendering %s: %w", toLabel, err)
	}
	p := plan.Compare(fromOwners, toOwners)
	p.From, p.To = o.from+" ("+from.Short()+")", toLabel
	return writePlan(cmd, p, o)
}

// runLivePlan plans the working tree, or --to, against the live cluster.
func runLivePlan(cmd *cobra.Command, g *globalOptions, root string, o planOptions, offline offlineOptions) error {
	if cmd.Flags().Changed("from") {
		return errors.New("--from and --cluster exclude each other: with --cluster, the cluster is what the plan starts from")
	}
	label := "working tree"
	if o.to != "" {
		git, rel, err := gitrev.OpenAt(root)
		if err != nil {
			return err
		}
		to, err := git.Resolve(o.to)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		tmp, err := os.MkdirTemp("", "weir-plan-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if root, err = exportAt(git, to, rel, tmp); err != nil {
			return err
		}
		label = o.to + " (" + to.Short() + ")"
	}
	p, err := livePlan(cmd, g, root, o, offline)
	if err != nil {
		return err
	}
	p.From, p.To = "the cluster", label
	return writePlan(cmd, p, o)
}

// writePlan prints p in --format, and turns a change into exit code 2
// with --exit-code.
func writePlan(cmd *cobra.Command, p *plan.Plan, o planOptions) error {
	var err error
	out := cmd.OutOrStdout()
	switch o.format {
	case "json":
		err = p.WriteJSON(out)
	case "markdown":
		err = p.WriteMarkdown(out, o.limit)
	default:
		err = p.WriteText(out, useColour(o.colour, out))
	}
	if err != nil {
		return err
	}
	if o.exitCode && p.Changed() {
		return exitError{code: 2}
	}
	return nil
}

// useColour decides --color for w.
func useColour(mode string, w any) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	f, ok := w.(*os.File)
	return ok && os.Getenv("NO_COLOR") == "" && term.IsTerminal(int(f.Fd()))
}

// ownersAt renders the repository at rel of commit c: the commit's files
// are written to a temporary folder (rel's parent too, where `weir up`
// looks for charts beside the repository) and rendered there.
func ownersAt(cmd *cobra.Command, git *gitrev.Repository, c *gitrev.Commit, rel string, o planOptions, offline offlineOptions) ([]*plan.Owner, error) {
	tmp, err := os.MkdirTemp("", "weir-plan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	root, err := exportAt(git, c, rel, tmp)
	if err != nil {
		return nil, err
	}
	return planOwners(cmd, root, o, offline, nil)
}

// exportAt writes the files of commit c at rel, and beside it (where
// `weir up` looks for charts), into tmp, and returns rel's folder there.
func exportAt(git *gitrev.Repository, c *gitrev.Commit, rel, tmp string) (string, error) {
	prefix := path.Dir(rel)
	if rel == "." {
		prefix = "."
	}
	if err := git.Export(c, prefix, tmp); err != nil {
		return "", err
	}
	root := filepath.Join(tmp, filepath.FromSlash(rel))
	if _, err := os.Stat(root); err != nil {
		return "", fmt.Errorf("%s has no folder %s", c.Short(), rel)
	}
	return root, nil
}

// renderedOwners keeps, for `weir plan --cluster`, what the plan owners
// came from.
type renderedOwners struct {
	// releases are the HelmReleases rendered.
	releases map[*plan.Owner]*renderedHelmRelease
	// ignore are the Kustomizations' spec.ignore rules.
	ignore map[*plan.Owner][]kustomizev1.IgnoreRule
}

// planOwners renders every Kustomization of the repository at root, and
// the chart of every HelmRelease they apply, as plan owners; kept, when
// not nil, records what they came from.
func planOwners(cmd *cobra.Command, root string, o planOptions, offline offlineOptions, kept *renderedOwners) ([]*plan.Owner, error) {
	r, keys, err := openRepository(root, root, offline)
	if err != nil {
		return nil, err
	}
	built, err := buildAll(cmd, r, keys, offline)
	if err != nil {
		return nil, err
	}
	var owners []*plan.Owner
	for _, bc := range built {
		var rendered []*unstructured.Unstructured
		for _, k := range bc.Kustomizations {
			rendered = append(rendered, k.Objects...)
		}
		caps := helm.Capabilities{KubeVersion: o.fetch.kubeVersion, APIVersions: crdAPIVersions(rendered)}
		for _, k := range bc.Kustomizations {
			ks := &plan.Owner{
				Cluster: bc.Name, Kind: plan.KindKustomization, Namespace: k.Namespace, Name: k.Name,
				Prune: k.spec.Prune, Force: k.spec.Force, Objects: k.Objects, Fingerprints: k.fingerprints,
				Error: k.Error, Skipped: k.Skipped,
			}
			owners = append(owners, ks)
			if kept != nil && len(k.spec.Ignore) > 0 {
				kept.ignore[ks] = k.spec.Ignore
			}
			for _, u := range k.Objects {
				if u.GetKind() != helmv2.HelmReleaseKind || !strings.HasPrefix(u.GetAPIVersion(), helmv2.GroupVersion.Group+"/") {
					continue
				}
				owner, rendered := releaseOwner(cmd, r, bc, k, u.GetNamespace(), u.GetName(), o, offline, caps)
				owners = append(owners, owner)
				if kept != nil && rendered != nil {
					kept.releases[owner] = rendered
				}
			}
		}
	}
	return owners, nil
}

// releaseOwner renders the HelmRelease namespace/name that k applies.
func releaseOwner(cmd *cobra.Command, r *repo.Repository, bc builtCluster, k builtKustomization, namespace, name string, o planOptions, offline offlineOptions, caps helm.Capabilities) (*plan.Owner, *renderedHelmRelease) {
	owner := &plan.Owner{Cluster: bc.Name, Kind: plan.KindHelmRelease, Namespace: namespace, Name: name, Prune: true}
	offline.cluster = bc.Path
	rel := strings.TrimPrefix(path.Clean("/"+k.Path), "/")
	rendered, err := renderHelmRelease(cmd.Context(), helmRenderOptions{
		name: name, namespace: namespace, root: r.Root(), charts: o.charts, offline: offline, repository: r,
		fetch: o.fetcher, caps: caps, applier: k.applier(),
		path: filepath.Join(r.Root(), filepath.FromSlash(rel)),
	})
	var unavailable *chartUnavailableError
	switch {
	case errors.As(err, &unavailable):
		owner.Skipped = "its chart was not rendered: " + err.Error()
		return owner, nil
	case err != nil:
		owner.Error = err.Error()
		return owner, nil
	}
	if up := rendered.hr.Spec.Upgrade; up != nil {
		owner.Force = up.Force
	}
	if err := setReleaseObjects(owner, rendered.release); err != nil {
		return owner, nil
	}
	return owner, rendered
}

// setReleaseObjects sets the owner's objects to the release's, Secrets
// fingerprinted then masked (a failure is the owner's error).
func setReleaseObjects(owner *plan.Owner, rel *release.Release) error {
	objects := decodeRelease(rel, true)
	owner.Fingerprints = render.FingerprintSecrets(objects)
	if err := render.MaskSecrets(objects); err != nil {
		owner.Error = err.Error()
		return err
	}
	owner.Objects = objects
	return nil
}
