package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/depgraph"
	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/repo"
)

// builtKustomization is one Kustomization of `weir build all`.
type builtKustomization struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// File declares the Kustomization; Path is its spec.path.
	File string `json:"file"`
	Path string `json:"path"`
	// Objects are what it would apply, Secret data masked.
	Objects []*unstructured.Unstructured `json:"objects"`
	// Unresolved are the variables left as written.
	Unresolved []string `json:"unresolved,omitempty"`
	// Skipped says why it was not rendered (its source is another
	// repository); Error why it failed.
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
	// spec is the Kustomization's spec (prune and force for weir plan);
	// fingerprints tell masked Secret values apart.
	spec         kustomizev1.KustomizationSpec
	fingerprints map[string]map[string]string
	// unavailable are the substituteFrom sources not in the repository,
	// for the warnings printed once every render is done.
	unavailable []*render.UnavailableError
	// dependsOn are the Kustomizations it waits for.
	dependsOn []depgraph.Key
	// reads is what its render read of the repository (weir test
	// --since).
	reads render.Reads
	// applied is the Kustomization as the one that applies it rendered
	// it, nil when it was built as written.
	applied *unstructured.Unstructured
}

// builtCluster is one cluster (sync root) of `weir build all`.
type builtCluster struct {
	Name           string               `json:"name"`
	Path           string               `json:"path"`
	Kustomizations []builtKustomization `json:"kustomizations"`
}

func newBuildAllCommand() *cobra.Command {
	var offline offlineOptions
	var root, output string
	cmd := &cobra.Command{
		Use:   "all [PATH]",
		Short: "Render every Kustomization of a repository, offline, grouped by Kustomization",
		Long: "build all finds the clusters of the repository at PATH (default: the current folder; its sync\n" +
			"roots, as `weir build ks` and `weir up` find them), then renders every Flux Kustomization each\n" +
			"cluster applies from this repository, as `weir build ks` renders one: with its cluster's values,\n" +
			"Secret data masked, variables of sources not in the repository left as written (listed on standard\n" +
			"error). Kustomizations whose source is another repository are listed as skipped. The objects come\n" +
			"grouped by the Kustomization that owns them, as YAML (a comment heads each group) or as JSON.\n" +
			"HelmReleases appear as objects of their Kustomization; `weir build hr` renders their charts.\n" +
			"It exits 1 when any Kustomization fails to render, after rendering all of them.",
		Example: "  weir build all\n  weir build all ~/home-ops --cluster main -o json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if output != "yaml" && output != "json" {
				return fmt.Errorf("--output %q: use yaml or json", output)
			}
			r, keys, err := openRepository(dir, root, offline)
			if err != nil {
				return err
			}
			defer saveIndex(r)
			clusters, err := buildAll(cmd, r, keys, offline)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"clusters": clusters}); err != nil {
					return err
				}
			} else if err := writeBuildAll(cmd.OutOrStdout(), clusters); err != nil {
				return err
			}
			failed := 0
			for _, c := range clusters {
				for _, k := range c.Kustomizations {
					if k.Error != "" {
						failed++
						fmt.Fprintf(cmd.ErrOrStderr(), "✗ %s: Kustomization %s/%s (%s): %s\n", c.Name, k.Namespace, k.Name, k.File, k.Error)
					}
				}
			}
			if failed > 0 {
				return errors.New(plural(failed, "Kustomization") + " failed to render")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "repo", "", "root of the repository (default: the Git root above PATH)")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "yaml or json")
	addOfflineFlags(cmd, &offline, false)
	return cmd
}

// openRepository opens the repository of dir (its Git root, or root when
// --repo gives it) and reads the age keys, for build all and test.
func openRepository(dir, root string, offline offlineOptions) (*repo.Repository, *render.AgeKeys, error) {
	if root == "" {
		root = gitRoot(mustAbs(dir))
	}
	keys, err := offline.ageKeys()
	if err != nil {
		return nil, nil, err
	}
	r, err := openIndexed(root)
	if err != nil {
		return nil, nil, err
	}
	return r, keys, nil
}

// buildAll renders the Kustomizations of every cluster, or of the one
// --cluster names.
func buildAll(cmd *cobra.Command, r *repo.Repository, keys *render.AgeKeys, offline offlineOptions) ([]builtCluster, error) {
	all := r.Clusters()
	if len(all) == 0 {
		return nil, fmt.Errorf("no cluster found in %s: no flux-system Kustomization, FluxInstance or conventional sync folder", r.Root())
	}
	var out []builtCluster
	for _, c := range all {
		if offline.cluster != "" && offline.cluster != c.Name && offline.cluster != c.Path {
			continue
		}
		var kss []*repo.Object
		seen := map[string]bool{}
		for _, o := range c.Objects {
			if o.GetKind() != kustomizev1.KustomizationKind || !strings.HasPrefix(o.GetAPIVersion(), kustomizev1.GroupVersion.Group+"/") {
				continue
			}
			key := o.File + "|" + o.Namespace + "|" + o.GetName()
			if seen[key] {
				continue
			}
			seen[key] = true
			kss = append(kss, o)
		}
		// A Kustomization that another applies is rendered as that one
		// renders it (its postBuild variables substituted, its patches
		// applied: a spec.path or dependsOn holding ${CLUSTER} is what the
		// cluster resolves), so the one that applies it is rendered
		// first, level by level from the sync root. Within a level the
		// renders run on every core; each result has its slot, so the
		// output does not depend on which finishes first. kustomize itself
		// runs one build at a time (render's buildLock, some 40% of a
		// render): reading, substituting and masking are what overlap.
		bc := builtCluster{Name: c.Name, Path: c.Path, Kustomizations: make([]builtKustomization, len(kss))}
		parent := parents(kss)
		done := make([]bool, len(kss))
		for left := len(kss); left > 0; {
			var level []int
			for i := range kss {
				if !done[i] && (parent[i] < 0 || done[parent[i]]) {
					level = append(level, i)
				}
			}
			if len(level) == 0 { // appliers in a loop, which no walk finds: all as written
				for i := range kss {
					if !done[i] {
						level, parent[i] = append(level, i), -1
					}
				}
			}
			g, ctx := errgroup.WithContext(cmd.Context())
			g.SetLimit(runtime.GOMAXPROCS(0))
			for _, i := range level {
				var applied *unstructured.Unstructured
				if parent[i] >= 0 {
					applied = appliedBy(&bc.Kustomizations[parent[i]], kss[i])
				}
				g.Go(func() error {
					bc.Kustomizations[i] = buildOne(ctx, r, c, kss[i], applied, keys, offline.strict)
					return nil
				})
			}
			_ = g.Wait() // buildOne reports its failures in its result
			if err := cmd.Context().Err(); err != nil {
				return nil, err
			}
			for _, i := range level {
				done[i] = true
			}
			left -= len(level)
		}
		for _, k := range bc.Kustomizations {
			for _, u := range k.unavailable {
				fmt.Fprintf(cmd.ErrOrStderr(), "⚠ %s: Kustomization %s/%s: postBuild.substituteFrom %s: its variables are left as written\n", c.Name, k.Namespace, k.Name, u)
			}
		}
		slices.SortFunc(bc.Kustomizations, func(a, b builtKustomization) int {
			return strings.Compare(a.Namespace+"/"+a.Name+"|"+a.File, b.Namespace+"/"+b.Name+"|"+b.File)
		})
		out = append(out, bc)
	}
	if len(out) == 0 {
		names := make([]string, len(all))
		for i, c := range all {
			names[i] = c.Name + " (" + c.Path + ")"
		}
		return nil, fmt.Errorf("--cluster %q is none of the repository's clusters: %s", offline.cluster, strings.Join(names, ", "))
	}
	return out, nil
}

// applier is k as the Kustomization that applies the folder of its
// HelmReleases, with the spec it was rendered with (see
// helmRenderOptions.applier); nil when it did not render.
func (k *builtKustomization) applier() *kustomizev1.Kustomization {
	if k.Error != "" || k.Skipped != "" {
		return nil
	}
	return &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: k.Name, Namespace: k.Namespace}, Spec: k.spec}
}

// parents returns, for each Kustomization of kss, the index of the one
// among them that applies it (Object.By), -1 for none: one of the sync
// root, or one whose applier is not among them or not alone with its
// name. The walk that found them never loops, so neither do parents.
func parents(kss []*repo.Object) []int {
	at := map[string]int{}
	for i, o := range kss {
		key := o.Namespace + "/" + o.GetName()
		if _, twice := at[key]; twice {
			at[key] = -1
			continue
		}
		at[key] = i
	}
	out := make([]int, len(kss))
	for i, o := range kss {
		out[i] = -1
		if j, ok := at[o.By]; ok && o.By != "" && j != i {
			out[i] = j
		}
	}
	return out
}

// appliedBy returns the Kustomization o among what its applier rendered,
// nil when that failed or does not hold it.
func appliedBy(applier *builtKustomization, o *repo.Object) *unstructured.Unstructured {
	if applier.Error != "" || applier.Skipped != "" {
		return nil
	}
	for _, u := range applier.Objects {
		if u.GetKind() == kustomizev1.KustomizationKind && strings.HasPrefix(u.GetAPIVersion(), kustomizev1.GroupVersion.Group+"/") &&
			u.GetName() == o.GetName() && (u.GetNamespace() == "" || o.Namespace == "" || u.GetNamespace() == o.Namespace) {
			return u
		}
	}
	return nil
}

// buildOne renders one Kustomization of cluster c: applied, when set, as
// the Kustomization that applies it rendered it, else as written. It is
// safe to call from several goroutines: Repository and Cluster.Values are
// read only.
func buildOne(ctx context.Context, r *repo.Repository, c *repo.Cluster, o *repo.Object, applied *unstructured.Unstructured, keys *render.AgeKeys, strict bool) builtKustomization {
	k := builtKustomization{Name: o.GetName(), Namespace: o.Namespace, File: o.File, Objects: []*unstructured.Unstructured{}, applied: applied}
	spec := o.Object
	if applied != nil {
		spec = applied.Object
	}
	src, _, _ := unstructured.NestedString(spec, "spec", "sourceRef", "name")
	specPath, _, _ := unstructured.NestedString(spec, "spec", "path")
	k.Path = specPath
	if src != "" && src != c.Source {
		k.Skipped = fmt.Sprintf("its source %s is another repository", src)
		return k
	}
	rel := strings.TrimPrefix(path.Clean("/"+specPath), "/")
	if rel == "" {
		rel = "."
	}
	built, err := r.Build(ctx, repo.BuildOptions{
		Query: repo.Query{Name: o.GetName(), Namespace: o.Namespace, File: o.File, Cluster: c.Path, Path: rel},
		Keys:  keys, Strict: strict, DefaultNamespace: "flux-system", Applied: applied,
	})
	if err != nil {
		k.Error = err.Error()
		return k
	}
	k.Namespace = built.Kustomization.Namespace
	k.spec = built.Kustomization.Spec
	k.fingerprints = built.Report.SecretFingerprints
	k.reads = built.Report.Reads
	k.Objects = built.Objects
	k.Unresolved = built.Report.Unresolved
	k.unavailable = built.Report.Unavailable
	deps, _, _ := unstructured.NestedSlice(spec, "spec", "dependsOn")
	for _, d := range deps {
		m, _ := d.(map[string]any)
		name, _ := m["name"].(string)
		ns, _ := m["namespace"].(string)
		k.dependsOn = append(k.dependsOn, depgraph.Key{Kind: kustomizev1.KustomizationKind, Namespace: orDefault(ns, k.Namespace), Name: name})
	}
	return k
}

// writeBuildAll prints the groups as YAML documents, a comment heading
// each Kustomization's.
func writeBuildAll(w io.Writer, clusters []builtCluster) error {
	for _, c := range clusters {
		fmt.Fprintf(w, "# cluster %s (%s)\n", c.Name, c.Path)
		for _, k := range c.Kustomizations {
			head := fmt.Sprintf("# Kustomization %s/%s (%s, path %s)", k.Namespace, k.Name, k.File, k.Path)
			switch {
			case k.Skipped != "":
				fmt.Fprintf(w, "%s: skipped, %s\n", head, k.Skipped)
				continue
			case k.Error != "":
				fmt.Fprintf(w, "%s: failed: %s\n", head, oneLine(k.Error))
				continue
			}
			fmt.Fprintf(w, "%s: %s\n", head, plural(len(k.Objects), "object"))
			for _, o := range k.Objects {
				b, err := yaml.Marshal(o.Object)
				if err != nil {
					return fmt.Errorf("printing %s %s: %w", o.GetKind(), o.GetName(), err)
				}
				fmt.Fprintf(w, "---\n%s", b)
			}
		}
	}
	return nil
}

// oneLine keeps a message on one comment line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
