package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/spf13/cobra"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/weirhq/weir/internal/chartfetch"
	"github.com/weirhq/weir/internal/helm"
	"github.com/weirhq/weir/internal/repo"
)

// fetchChart fetches hr's chart from its source among objects: an
// OCIRepository chartRef, or a HelmRepository (of type oci or default)
// named by spec.chart or by a HelmChart chartRef. A chart that cannot be
// had (offline and not cached, a source that cannot be reached) is a
// *chartUnavailableError naming the chart and its source.
func fetchChart(ctx context.Context, hr *helmv2.HelmRelease, objects []*unstructured.Unstructured, f *chartfetch.Fetcher) (*chartfetch.Chart, error) {
	var (
		ch                   *chartfetch.Chart
		err                  error
		chartName, from, src string
	)
	switch {
	case hr.HasChartRef() && hr.Spec.ChartRef.Kind == sourcev1.OCIRepositoryKind:
		ns := orDefault(hr.Spec.ChartRef.Namespace, hr.Namespace)
		obj := &sourcev1.OCIRepository{}
		if err := fromObject(objects, sourcev1.OCIRepositoryKind, ns, hr.Spec.ChartRef.Name, obj); err != nil {
			return nil, fmt.Errorf("HelmRelease %s/%s: %w", hr.Namespace, hr.Name, err)
		}
		chartName, src = obj.Name, sourcev1.OCIRepositoryKind+" "+obj.Namespace+"/"+obj.Name
		from = src + " (" + obj.Spec.URL + ")"
		ch, err = f.OCIRepository(ctx, obj)
	default:
		ns, version := hr.Namespace, ""
		var ref helmv2.CrossNamespaceObjectReference
		switch {
		case hr.HasChartRef() && hr.Spec.ChartRef.Kind == sourcev1.HelmChartKind:
			hc := &sourcev1.HelmChart{}
			if err := fromObject(objects, sourcev1.HelmChartKind, orDefault(hr.Spec.ChartRef.Namespace, hr.Namespace), hr.Spec.ChartRef.Name, hc); err != nil {
				return nil, fmt.Errorf("HelmRelease %s/%s: %w", hr.Namespace, hr.Name, err)
			}
			ns, chartName, version = hc.Namespace, hc.Spec.Chart, hc.Spec.Version
			ref = helmv2.CrossNamespaceObjectReference{Kind: hc.Spec.SourceRef.Kind, Name: hc.Spec.SourceRef.Name}
		case hr.HasChartTemplate():
			s := hr.Spec.Chart.Spec
			ns, chartName, version, ref = orDefault(s.SourceRef.Namespace, hr.Namespace), s.Chart, s.Version, s.SourceRef
		}
		if ref.Kind != sourcev1.HelmRepositoryKind {
			return nil, &chartUnavailableError{fmt.Sprintf("HelmRelease %s/%s: its chart source is not in the repository, nor one weir fetches (OCIRepository, HelmRepository); pass --chart with the chart's folder or archive", hr.Namespace, hr.Name)}
		}
		obj := &sourcev1.HelmRepository{}
		if err := fromObject(objects, sourcev1.HelmRepositoryKind, ns, ref.Name, obj); err != nil {
			return nil, fmt.Errorf("HelmRelease %s/%s: %w", hr.Namespace, hr.Name, err)
		}
		src = sourcev1.HelmRepositoryKind + " " + obj.Namespace + "/" + obj.Name
		from = src + " (" + obj.Spec.URL + ")"
		ch, err = f.HelmRepository(ctx, obj, chartName, version)
	}
	var unavailable *chartfetch.UnavailableError
	switch {
	case errors.As(err, &unavailable):
		return nil, &chartUnavailableError{fmt.Sprintf("HelmRelease %s/%s: its chart %s comes from %s: %v", hr.Namespace, hr.Name, chartName, from, err)}
	case err != nil:
		return nil, fmt.Errorf("HelmRelease %s/%s: its chart %s from %s: %w", hr.Namespace, hr.Name, chartName, src, err)
	}
	return ch, nil
}

// fromObject reads the source of kind called name in namespace among
// objects into obj, in that namespace when it has none.
func fromObject(objects []*unstructured.Unstructured, kind, namespace, name string, obj interface{ SetNamespace(string) }) error {
	u := findObject(objects, kind, namespace, name)
	if u == nil {
		return &chartUnavailableError{fmt.Sprintf("its chart source %s %s/%s was not found in the repository; pass --chart with the chart's folder or archive", kind, namespace, name)}
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return fmt.Errorf("%s %s/%s does not parse: %w", kind, namespace, name, err)
	}
	obj.SetNamespace(namespace)
	return nil
}

// crdAPIVersions are the API versions the CustomResourceDefinitions among
// objects serve, as a cluster's discovery lists them for
// .Capabilities.APIVersions: "group/version" and "group/version/Kind".
func crdAPIVersions(objects []*unstructured.Unstructured) []string {
	var out []string
	for _, u := range objects {
		if u.GetKind() != "CustomResourceDefinition" || !strings.HasPrefix(u.GetAPIVersion(), "apiextensions.k8s.io/") {
			continue
		}
		group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
		versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
		for _, v := range versions {
			m, _ := v.(map[string]any)
			name, _ := m["name"].(string)
			if served, ok := m["served"].(bool); name == "" || (ok && !served) {
				continue
			}
			out = append(out, group+"/"+name, group+"/"+name+"/"+kind)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// chartFetchOptions are the flags of fetching charts and of what they are
// rendered for.
type chartFetchOptions struct {
	cache       string // --chart-cache
	offline     bool   // --offline
	kubeVersion string // --kube-version
}

func (o *chartFetchOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.cache, "chart-cache", "", "folder that keeps fetched charts, by digest (default: weir/charts in the user cache folder)")
	cmd.Flags().BoolVar(&o.offline, "offline", false, "fetch no chart: only local copies and --chart-cache are read")
	// The default is left empty here: Helm derives it from the build's
	// module information, which a test binary lacks, so that printing it
	// would make the help differ between builds.
	cmd.Flags().StringVar(&o.kubeVersion, "kube-version", "", "Kubernetes version charts see as .Capabilities.KubeVersion (default: the version of the Kubernetes libraries weir is built with, as helm template)")
}

// fetcher checks the flags and returns the Fetcher they describe.
func (o *chartFetchOptions) fetcher() (*chartfetch.Fetcher, error) {
	if o.kubeVersion != "" {
		if err := helm.ParseKubeVersion(o.kubeVersion); err != nil {
			return nil, fmt.Errorf("--kube-version: %w", err)
		}
	}
	dir := o.cache
	if dir == "" {
		dir = chartfetch.DefaultCache()
	}
	return &chartfetch.Fetcher{Cache: dir, Offline: o.offline}, nil
}

// chartSources are where `weir test` finds charts and what it renders
// them for.
type chartSources struct {
	charts      string // --charts
	fetch       *chartfetch.Fetcher
	kubeVersion string
}

// chartCRDs are the CustomResourceDefinitions in the crds/ folders of a
// chart and of its subcharts.
func chartCRDs(ch *chart.Chart) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, crd := range ch.CRDObjects() {
		out = append(out, repo.Decode(crd.File.Data)...)
	}
	return out
}

// readsAPIVersions reports whether a chart's templates, or its subcharts',
// read .Capabilities.APIVersions: only those render differently when more
// API versions are known.
func readsAPIVersions(ch *chart.Chart) bool {
	for _, t := range ch.Templates {
		if bytes.Contains(t.Data, []byte("APIVersions")) {
			return true
		}
	}
	return slices.ContainsFunc(ch.Dependencies(), readsAPIVersions)
}
