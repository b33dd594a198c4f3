package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/chartfetch"
	"github.com/weirhq/weir/internal/helm"
	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/repo"
	"github.com/weirhq/weir/internal/up"
)

// helmRenderOptions say where `build hr` and `diff hr` find a HelmRelease
// and its chart on disk.
type helmRenderOptions struct {
	name      string
	namespace string // "" matches any namespace
	path      string // folder that holds the HelmRelease
	root      string // repository root; default the Git root above path
	chart     string // a chart folder or archive; default looked up in charts
	charts    string // folder of chart folders; default as weir up finds it
	// values is consulted after the objects rendered from path for the
	// ConfigMaps and Secrets of valuesFrom; nil reads what the
	// HelmRelease's cluster applies in the repository.
	values client.Reader
	// offline picks the applying Kustomization's cluster and keys.
	offline offlineOptions
	// repository is root already opened (weir test renders every
	// HelmRelease of one repository); nil opens root.
	repository *repo.Repository
	// fetch fetches a chart with no local copy from its source; nil
	// renders only local copies.
	fetch *chartfetch.Fetcher
	// caps are the capabilities of the cluster the chart is rendered for.
	caps helm.Capabilities
	// applier, when set, is the Kustomization that applies path as weir
	// test rendered it (its spec as the Kustomization that applies it
	// renders it, variables substituted and patches applied), of the
	// cluster offline.cluster names; nil finds the Kustomization whose
	// spec.path is path, as written in the repository.
	applier *kustomizev1.Kustomization
}

// renderedHelmRelease is a HelmRelease rendered from local files: its
// composed values and the release a fresh install would make.
type renderedHelmRelease struct {
	hr      *helmv2.HelmRelease
	chart   *chart.Chart
	values  map[string]any
	release *release.Release
	// report is what the applying Kustomization's substitutions left as
	// written.
	report *render.Report
	// caps are the capabilities it was rendered with.
	caps helm.Capabilities
	// stale says why a fetched chart is the one its source gave last
	// rather than the one it gives now; empty when it is current.
	stale string
}

// renderHelmRelease renders path as the Kustomization that applies it
// would (or plainly, when none in the repository does), takes the
// HelmRelease called o.name from the result, composes its values from the
// ConfigMaps and Secrets rendered beside it (then o.values, or those its
// cluster applies), and renders its chart from a local copy, with no
// cluster.
func renderHelmRelease(ctx context.Context, o helmRenderOptions) (*renderedHelmRelease, error) {
	if o.path == "" {
		return nil, errors.New("--path is required: the local folder that holds the HelmRelease")
	}
	root, rel, err := resolvePath(o.path, o.root)
	if err != nil {
		return nil, err
	}
	keys, err := o.offline.ageKeys()
	if err != nil {
		return nil, err
	}
	r := o.repository
	if r == nil {
		if r, err = openIndexed(root); err != nil {
			return nil, err
		}
		defer saveIndex(r)
	}
	var spec kustomizev1.KustomizationSpec
	var ns string
	var cluster *repo.Cluster
	var found bool
	if o.applier != nil {
		spec, ns, cluster, found = o.applier.Spec, o.applier.Namespace, clusterNamed(r, o.offline.cluster), true
		spec.Path, spec.Decryption = "./"+path.Clean(filepath.ToSlash(rel)), nil
		if ns == "" {
			ns = "flux-system"
		}
	} else if spec, ns, cluster, found, err = applyingKustomization(r, filepath.ToSlash(rel), o.offline.cluster); err != nil {
		return nil, err
	}
	// Without a Kustomization applying the folder, -n says where its
	// objects go.
	if !found && o.namespace != "" {
		ns = o.namespace
	}
	report := &render.Report{}
	opts := render.Options{Root: root, Namespace: ns, Spec: spec, Values: cluster.Values(keys), KeepUnavailable: !o.offline.strict, Report: report}
	out, err := render.Build(ctx, opts)
	var rerr *render.Error
	if errors.As(err, &rerr) && rerr.Step == render.StepDecrypt {
		// A SOPS-encrypted Secret beside the HelmRelease (the folder's own
		// decryption is not done offline): render again with every Secret
		// masked, as weir build ks prints them. Values read from those
		// Secrets are masked in the chart's output too, never ciphertext.
		report = &render.Report{}
		opts.Report, opts.MaskSecrets = report, true
		out, err = render.Build(ctx, opts)
	}
	if err != nil {
		return nil, err
	}
	hr, err := findHelmRelease(out, o.namespace, o.name, ns)
	if err != nil {
		return nil, fmt.Errorf("%w under %s", err, o.path)
	}
	var values client.Reader = cluster.Values(keys)
	if o.values != nil {
		values = o.values
	}
	// What the HelmRelease reads (valuesFrom, its source's secretRef):
	// the objects rendered beside it, then those of its cluster.
	reader := firstFound{repo.NewValues(out, keys, "the objects rendered from "+o.path), values}
	vals, err := helm.ComposeValues(ctx, reader, hr)
	if err != nil {
		return nil, fmt.Errorf("HelmRelease %s/%s: %w", hr.Namespace, hr.Name, err)
	}
	sources := out
	if cluster != nil {
		for _, obj := range cluster.Objects {
			sources = append(sources, obj.Unstructured)
		}
	}
	chartPath, err := localChart(hr, sources, root, o)
	var unavailable *chartUnavailableError
	stale := ""
	if errors.As(err, &unavailable) && o.fetch != nil {
		var fetched *chartfetch.Chart
		if fetched, err = fetchChart(ctx, hr, sources, o.fetch.WithSecrets(reader)); err == nil {
			chartPath, stale = fetched.Path, fetched.Stale
		}
	}
	if err != nil {
		return nil, err
	}
	ch, err := loader.Load(chartPath)
	if err != nil {
		return nil, fmt.Errorf("loading the chart %s: %w", chartPath, err)
	}
	rls, err := helm.Template(ctx, hr, ch, vals, o.caps)
	if err != nil {
		return nil, fmt.Errorf("HelmRelease %s/%s: %w", hr.Namespace, hr.Name, err)
	}
	return &renderedHelmRelease{hr: hr, chart: ch, values: vals, release: rls, report: report, caps: o.caps, stale: stale}, nil
}

// applyingKustomization is the spec (path set to rel, decryption off),
// namespace and cluster of the repository's Kustomization whose spec.path
// is rel, and whether there is one; without one, a bare spec in
// flux-system, in the cluster whose sync root holds rel (nil when none
// does).
func applyingKustomization(r *repo.Repository, rel, cluster string) (_ kustomizev1.KustomizationSpec, _ string, _ *repo.Cluster, found bool, _ error) {
	want := path.Clean(rel)
	m, err := r.FindKustomization(repo.Query{SpecPath: want, Cluster: cluster, Path: want})
	if err != nil {
		if repo.IsNotFound(err) {
			return kustomizev1.KustomizationSpec{Path: "./" + want}, "flux-system", r.ClusterOf(want), false, nil
		}
		return kustomizev1.KustomizationSpec{}, "", nil, false, err
	}
	spec := m.Kustomization.Spec
	spec.Path = "./" + want
	spec.Decryption = nil
	ns := m.Kustomization.Namespace
	if ns == "" {
		ns = "flux-system"
	}
	return spec, ns, m.Cluster, true, nil
}

// clusterNamed returns the cluster of the repository whose name or sync
// root is name; nil for none.
func clusterNamed(r *repo.Repository, name string) *repo.Cluster {
	for _, c := range r.Clusters() {
		if c.Name == name || c.Path == name {
			return c
		}
	}
	return nil
}

// findHelmRelease picks the HelmRelease called name (in namespace, when
// not empty) among rendered objects; one without a namespace is in
// defaultNS, where the Kustomization applying it would put it.
func findHelmRelease(objects []*unstructured.Unstructured, namespace, name, defaultNS string) (*helmv2.HelmRelease, error) {
	var found []*helmv2.HelmRelease
	for _, u := range objects {
		if u.GetKind() != helmv2.HelmReleaseKind || !strings.HasPrefix(u.GetAPIVersion(), helmv2.GroupVersion.Group+"/") || u.GetName() != name {
			continue
		}
		hr := &helmv2.HelmRelease{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, hr); err != nil {
			return nil, fmt.Errorf("HelmRelease %s does not parse: %w", name, err)
		}
		if hr.Namespace == "" {
			hr.Namespace = defaultNS
		}
		if namespace != "" && hr.Namespace != namespace {
			continue
		}
		found = append(found, hr)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no HelmRelease named %s", name)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%d HelmReleases named %s: pass -n to choose", len(found), name)
}

// localChart finds a local copy of hr's chart: --chart, a chart kept in the
// repository (a GitRepository chart path), or a folder of --charts (by
// default the charts folder weir up pushes) whose Chart.yaml has the name
// the chart's source gives.
func localChart(hr *helmv2.HelmRelease, objects []*unstructured.Unstructured, root string, o helmRenderOptions) (string, error) {
	if o.chart != "" {
		return o.chart, nil
	}
	name, version, from, inRepo := chartOrigin(hr, objects)
	if inRepo != "" {
		p := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(inRepo, "./")))
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		return "", fmt.Errorf("HelmRelease %s/%s: its chart %s is not in the repository at %s", hr.Namespace, hr.Name, inRepo, root)
	}
	if name == "" {
		return "", &chartUnavailableError{fmt.Sprintf("HelmRelease %s/%s: its chart source was not found in the repository; pass --chart with the chart's folder or archive", hr.Namespace, hr.Name)}
	}
	dir := o.charts
	if dir == "" {
		dir = up.FindCharts(root)
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return "", fmt.Errorf("reading --charts %s: %w", dir, err)
		}
		var other string
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			md, err := loader.Load(p)
			if err != nil || md.Metadata == nil || md.Metadata.Name != name {
				continue
			}
			if version == "" || md.Metadata.Version == version {
				return p, nil
			}
			other = p
		}
		if other != "" {
			return other, nil
		}
	}
	where := "no charts folder was found beside the repository"
	if dir != "" {
		where = "it is not in " + dir
	}
	return "", &chartUnavailableError{fmt.Sprintf("HelmRelease %s/%s: its chart %s comes from %s and %s; weir renders offline: pass --chart with a local copy (for example from `helm pull`)",
		hr.Namespace, hr.Name, name, from, where)}
}

// chartUnavailableError says that a chart has no local copy: offline, it
// cannot be rendered, which `weir test` reports as a warning, not as a
// chart that fails.
type chartUnavailableError struct{ msg string }

func (e *chartUnavailableError) Error() string { return e.msg }

// chartOrigin reads hr's chart source among objects: the chart's name and
// version, where it comes from (for messages), or the chart's path in the
// repository when the source is a GitRepository.
func chartOrigin(hr *helmv2.HelmRelease, objects []*unstructured.Unstructured) (name, version, from, inRepo string) {
	lookup := func(kind, ns, n string) *unstructured.Unstructured {
		return findObject(objects, kind, orDefault(ns, hr.Namespace), n)
	}
	switch {
	case hr.HasChartRef() && hr.Spec.ChartRef.Kind == sourcev1.OCIRepositoryKind:
		u := lookup(sourcev1.OCIRepositoryKind, hr.Spec.ChartRef.Namespace, hr.Spec.ChartRef.Name)
		if u == nil {
			return "", "", "", ""
		}
		url, _, _ := unstructured.NestedString(u.Object, "spec", "url")
		tag, _, _ := unstructured.NestedString(u.Object, "spec", "ref", "tag")
		return path.Base(url), tag, url, ""
	case hr.HasChartRef() && hr.Spec.ChartRef.Kind == sourcev1.HelmChartKind:
		u := lookup(sourcev1.HelmChartKind, hr.Spec.ChartRef.Namespace, hr.Spec.ChartRef.Name)
		if u == nil {
			return "", "", "", ""
		}
		c, _, _ := unstructured.NestedString(u.Object, "spec", "chart")
		v, _, _ := unstructured.NestedString(u.Object, "spec", "version")
		kind, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "kind")
		src, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "name")
		return chartFromSource(kind, src, c, v)
	case hr.HasChartTemplate():
		s := hr.Spec.Chart.Spec
		return chartFromSource(s.SourceRef.Kind, s.SourceRef.Name, s.Chart, s.Version)
	}
	return "", "", "", ""
}

// findObject is the object of kind called name in namespace among
// objects; one without a namespace (the Kustomization applying it gives
// it one) matches any.
func findObject(objects []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, u := range objects {
		if u.GetKind() == kind && u.GetName() == name && (u.GetNamespace() == "" || u.GetNamespace() == namespace) {
			return u
		}
	}
	return nil
}

func chartFromSource(kind, source, chartName, version string) (name, v, from, inRepo string) {
	if kind == sourcev1.GitRepositoryKind || kind == sourcev1.BucketKind {
		return "", "", "", chartName
	}
	return chartName, version, kind + "/" + source, ""
}

// firstFound reads an object from the first reader that has it.
type firstFound []client.Reader

// Get implements client.Reader.
func (f firstFound) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	var err error
	for _, r := range f {
		if err = r.Get(ctx, key, obj, opts...); !apierrors.IsNotFound(err) {
			return err
		}
	}
	return err
}

// List implements client.Reader with the first reader.
func (f firstFound) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return f[0].List(ctx, list, opts...)
}

// releaseObjects are the objects of a release's manifest and, with hooks,
// of its hooks other than tests, Secrets masked.
func releaseObjects(rel *release.Release, hooks bool) ([]*unstructured.Unstructured, error) {
	out := decodeRelease(rel, hooks)
	if err := render.MaskSecrets(out); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeRelease is the objects of rel's manifest (and hooks but tests),
// Secrets as the chart rendered them.
func decodeRelease(rel *release.Release, hooks bool) []*unstructured.Unstructured {
	docs := []string{rel.Manifest}
	if hooks {
		for _, h := range rel.Hooks {
			if !isTestHook(h) {
				docs = append(docs, h.Manifest)
			}
		}
	}
	var out []*unstructured.Unstructured
	for _, d := range docs {
		out = append(out, repo.Decode([]byte(d))...)
	}
	return out
}

func isTestHook(h *release.Hook) bool {
	for _, e := range h.Events {
		if e == release.HookTest {
			return true
		}
	}
	return false
}
