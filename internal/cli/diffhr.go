package cli

import (
	"context"
	"fmt"
	"io"
	"sort"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/spf13/cobra"
	"github.com/wI2L/jsondiff"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/helm"
)

func newDiffHelmReleaseCommand(g *globalOptions) *cobra.Command {
	var o helmRenderOptions
	cmd := &cobra.Command{
		Use:     "helmrelease NAME --path DIR",
		Aliases: []string{"hr"},
		Short:   "Diff a HelmRelease's local files against its live release (exit 1 when they differ)",
		Long: "diff hr renders the HelmRelease NAME from --path as `weir build hr` does (valuesFrom also read\n" +
			"from the cluster), reads the latest release of it from Helm's storage in the cluster, and prints\n" +
			"what an upgrade would change: the chart version, the values, and each object created, changed\n" +
			"or deleted. Secret values are never printed. It exits 1 when there are changes, 0 when there\n" +
			"are none and 2 on errors, as `weir diff ks` does.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if cmd.Flags().Changed("namespace") {
				o.namespace = g.namespace
			}
			changed, err := diffHelmRelease(cmd.Context(), cmd.OutOrStdout(), g, o)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "✗", err)
				return exitError{code: 2}
			}
			if changed {
				return exitError{code: 1}
			}
			return nil
		},
	}
	addHelmRenderFlags(cmd, &o)
	return cmd
}

func diffHelmRelease(ctx context.Context, out io.Writer, g *globalOptions, o helmRenderOptions) (bool, error) {
	cfg, err := g.restConfig()
	if err != nil {
		return false, err
	}
	c, err := objectClient(g)
	if err != nil {
		return false, err
	}
	o.values = c
	local, err := renderHelmRelease(ctx, o)
	if err != nil {
		return false, err
	}
	// The live object says where the release is stored, should the local
	// one differ (a rename is itself a change the user sees below).
	hr := local.hr
	live := &helmv2.HelmRelease{}
	switch err := c.Get(ctx, client.ObjectKeyFromObject(hr), live); {
	case err == nil:
		hr = live
	case !apierrors.IsNotFound(err):
		return false, fmt.Errorf("HelmRelease %s/%s: %w", hr.Namespace, hr.Name, err)
	}
	last, err := helm.LastRelease(cfg, hr)
	if err != nil {
		return false, err
	}
	id := objectID(helmv2.HelmReleaseKind, hr.Namespace, hr.Name)
	want, err := releaseObjects(local.release, false)
	if err != nil {
		return false, err
	}
	if last == nil {
		fmt.Fprintf(out, "► %s has no release yet: an install of %s %s would create\n", id, local.chart.Name(), local.chart.Metadata.Version)
		for _, obj := range want {
			fmt.Fprintf(out, "► %s created\n", objectID(obj.GetKind(), obj.GetNamespace(), obj.GetName()))
		}
		return true, nil
	}
	if lv := last.Chart.Metadata.Version; lv != local.chart.Metadata.Version && helm.WithoutChartDigest(lv) == local.chart.Metadata.Version {
		// The release's chart came from an OCIRepository, and its version
		// carries the artifact's digest: the local copy of that version is
		// taken for it, and rendered as the controller renders it.
		local.chart.Metadata.Version = lv
		if local.release, err = helm.Template(ctx, local.hr, local.chart, local.values, local.caps); err != nil {
			return false, fmt.Errorf("HelmRelease %s/%s: %w", local.hr.Namespace, local.hr.Name, err)
		}
		if want, err = releaseObjects(local.release, false); err != nil {
			return false, err
		}
	}
	changed := false
	if lv, wv := last.Chart.Metadata.Version, local.chart.Metadata.Version; last.Chart.Metadata.Name != local.chart.Name() || lv != wv {
		changed = true
		fmt.Fprintf(out, "► %s chart %s %s -> %s %s\n", id, last.Chart.Metadata.Name, lv, local.chart.Name(), wv)
	}
	fromSecret := false
	for _, ref := range local.hr.Spec.ValuesFrom {
		fromSecret = fromSecret || ref.Kind == "Secret"
	}
	patch, err := jsondiff.Compare(last.Config, local.values)
	if err != nil {
		return false, fmt.Errorf("comparing the values of %s: %w", id, err)
	}
	if len(patch) > 0 {
		changed = true
		fmt.Fprintf(out, "► %s values changed\n", id)
		printPatch(out, patch, fromSecret)
	}
	have, err := releaseObjects(last, false)
	if err != nil {
		return false, err
	}
	return diffObjects(out, have, want) || changed, nil
}

// diffObjects prints the objects created, changed and deleted going from
// have to want, in want's order then have's.
func diffObjects(out io.Writer, have, want []*unstructured.Unstructured) bool {
	key := func(u *unstructured.Unstructured) string {
		return u.GroupVersionKind().GroupKind().String() + "/" + u.GetNamespace() + "/" + u.GetName()
	}
	old := map[string]*unstructured.Unstructured{}
	for _, u := range have {
		old[key(u)] = u
	}
	changed := false
	seen := map[string]bool{}
	for _, u := range want {
		k := key(u)
		seen[k] = true
		id := objectID(u.GetKind(), u.GetNamespace(), u.GetName())
		prev, ok := old[k]
		if !ok {
			changed = true
			fmt.Fprintf(out, "► %s created\n", id)
			continue
		}
		patch, err := jsondiff.Compare(prev.Object, u.Object)
		if err != nil || len(patch) == 0 {
			continue
		}
		changed = true
		fmt.Fprintf(out, "► %s changed\n", id)
		printPatch(out, patch, u.GetKind() == "Secret")
	}
	var gone []string
	for k, u := range old {
		if !seen[k] {
			gone = append(gone, objectID(u.GetKind(), u.GetNamespace(), u.GetName()))
		}
	}
	sort.Strings(gone)
	for _, id := range gone {
		changed = true
		fmt.Fprintf(out, "► %s deleted\n", id)
	}
	return changed
}

// printPatch prints one line per operation; hide leaves values out.
func printPatch(out io.Writer, patch jsondiff.Patch, hide bool) {
	for _, op := range patch {
		if hide || op.Type == jsondiff.OperationRemove {
			fmt.Fprintf(out, "  %s %s\n", op.Type, op.Path)
			continue
		}
		fmt.Fprintf(out, "  %s %s: %v\n", op.Type, op.Path, op.Value)
	}
}
