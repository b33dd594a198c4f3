package cli

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/weirhq/weir/internal/depgraph"
	"github.com/weirhq/weir/internal/helm"
	"github.com/weirhq/weir/internal/repo"
)

// testCase is one checked object of `weir test`: a Kustomization or a
// HelmRelease, with what failed and what is only a warning.
type testCase struct {
	Cluster  string
	Kind     string
	ID       string // namespace/name
	File     string
	Objects  int
	Failures []string
	Warnings []string
	// rendered is set for a HelmRelease whose chart was rendered.
	rendered bool
	// dependsOn are the refKeys of what it depends on.
	dependsOn []string
	// For a HelmRelease whose chart was rendered: the objects it
	// installs, the CRDs of the chart's crds/ folders, and the release's
	// namespace (for `--server` and `--local`).
	chartObjects     []*unstructured.Unstructured
	chartCRDs        []*unstructured.Unstructured
	releaseNamespace string
}

func newTestCommand(g *globalOptions) *cobra.Command {
	var offline offlineOptions
	var root, junit, charts string
	var fetch chartFetchOptions
	var server, local bool
	var since string
	cmd := &cobra.Command{
		Use:   "test [PATH]",
		Short: "Check a whole repository offline: every Kustomization builds, every reference resolves",
		Long: "test checks the repository at PATH (default: the current folder) as a pull request check would,\n" +
			"with no cluster: for each of its clusters (sync roots, or the one --cluster names) it renders every\n" +
			"Kustomization as `weir build all` does, then checks the graph the controllers would see:\n" +
			"  - every dependsOn names a Kustomization or HelmRelease the cluster defines;\n" +
			"  - the dependsOn entries form no cycle;\n" +
			"  - every Kustomization's sourceRef, and every HelmRelease's chartRef or chart sourceRef, names a\n" +
			"    source the cluster defines (the sync root's own source counts as defined);\n" +
			"  - no object is applied by two Kustomizations.\n" +
			"A substituteFrom source that is not in the repository leaves its variables as written: a warning\n" +
			"naming them, as the cluster may provide it (ExternalSecrets, bootstrap), and a failure with\n" +
			"--strict. It prints one line per Kustomization and HelmRelease and a summary, writes JUnit XML with\n" +
			"--junit FILE, and exits 1 when anything failed.\n" +
			"Each HelmRelease's chart is rendered with its values as `weir build hr` renders it, from the\n" +
			"repository or --charts, else fetched from its source: an OCIRepository chartRef (spec.ref and\n" +
			"layerSelector as source-controller reads them) or a HelmRepository of type oci or default (the\n" +
			"version spec.chart asks for, picked as source-controller picks it). Fetched charts are kept in\n" +
			"--chart-cache by digest: a digest ref or a cached chart costs no download, a tag one HEAD request,\n" +
			"an index a request answered 304 when it did not change. A source that cannot be reached falls back\n" +
			"to what the cache holds, with a warning; with --offline only the cache is read. A chart that\n" +
			"cannot be had (offline and not cached, unreachable, credentials the repository does not hold) is a\n" +
			"warning; a chart that does not render is a failure. Charts see --kube-version as\n" +
			".Capabilities.KubeVersion, and in .Capabilities.APIVersions the API versions of every\n" +
			"CustomResourceDefinition the cluster's Kustomizations or charts render.\n\n" +
			"With --server or --local it then sends every object each Kustomization renders to an API server as a\n" +
			"server-side apply dry run (nothing changes; Secret values stay masked), the Kustomizations in dependsOn\n" +
			"order and each one's objects in the order of weir's apply (CRDs and Namespaces first): what the server\n" +
			"refuses (schema, defaulting, admission) fails the Kustomization, naming the object and the server's\n" +
			"reason; then what each rendered chart installs, in its release's namespace, on its HelmRelease.\n" +
			"--server uses the cluster of your kubeconfig, for one cluster of the repository (--cluster):\n" +
			"a custom resource whose CRD, or an object whose Namespace, is only in the repository cannot be checked\n" +
			"there yet and is a warning. --local starts a throwaway local control plane per cluster (no nodes),\n" +
			"installs Flux's CRDs and applies the repository's CRDs and Namespaces to it first, so that they are\n" +
			"checked too, and stops it at the end, also on Ctrl-C. A kind that neither the cluster nor the\n" +
			"repository defines (a chart may install its CRD) is a warning with both.\n\n" +
			"--since REV checks only what the files changed since REV (to the working tree, uncommitted changes\n" +
			"included) can alter: the Kustomizations whose render read a changed file (or listed the folder one\n" +
			"was added to), whose declaration changed, or whose substituteFrom names a ConfigMap or Secret of a\n" +
			"changed file; the HelmReleases they apply, and all of them when a local chart changed; then whatever\n" +
			"depends on those. Every Kustomization is still rendered (that is how weir knows what each reads);\n" +
			"only the affected ones are checked, their charts rendered and dry-run.",
		Example: "  weir test\n  weir test ~/home-ops --cluster main --junit report.xml\n  weir test --local\n  weir test --server --cluster main --context prod",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if server && local {
				return errDryRunFlags
			}
			fetcher, err := fetch.fetcher()
			if err != nil {
				return err
			}
			r, keys, err := openRepository(dir, root, offline)
			if err != nil {
				return err
			}
			defer saveIndex(r)
			strict := offline.strict
			offline.strict = false // variables left as written are judged here
			built, err := buildAll(cmd, r, keys, offline)
			if err != nil {
				return err
			}
			var changed []string
			if since != "" {
				if changed, err = changedSince(r.Root(), since); err != nil {
					return err
				}
			}
			var cases []*testCase
			total := 0
			for _, bc := range built {
				cs := checkCluster(r.Clusters(), bc, bc.Name, strict)
				total += len(cs)
				if since != "" {
					cs = onlyAffected(r, bc, cs, changed, charts)
				}
				renderCharts(cmd, r, chartSources{charts: charts, fetch: fetcher, kubeVersion: fetch.kubeVersion}, bc, cs, offline)
				cases = append(cases, cs...)
			}
			if total == 0 {
				// A check that checks nothing would pass a pull request
				// whatever it holds: a wrong folder is an error.
				return fmt.Errorf("nothing to check in %s: none of its clusters applies a Flux Kustomization or HelmRelease (is it the repository, or --repo its root?)", r.Root())
			}
			if since != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "--since %s: %s changed; %d of the %d Kustomizations and HelmReleases can be altered by them or depend on one that can\n",
					since, plural(len(changed), "file"), len(cases), total)
			}
			if server || local {
				if err := dryRunClusters(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), g, local, built, cases); err != nil {
					return err
				}
			}
			failed := printTestCases(cmd.OutOrStdout(), cases)
			if junit != "" {
				if err := writeJUnit(junit, cases); err != nil {
					return err
				}
			}
			if failed > 0 {
				return errors.New(plural(failed, "object") + " failed the checks")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "repo", "", "root of the repository (default: the Git root above PATH)")
	cmd.Flags().StringVar(&junit, "junit", "", "write the results as JUnit XML to this file, for CI")
	cmd.Flags().StringVar(&since, "since", "", "check only what the changes since this Git revision (to the working tree) can alter, and what depends on it")
	cmd.Flags().BoolVar(&server, "server", false, "also dry-run every rendered object on the cluster of your kubeconfig (server-side apply, nothing changes)")
	cmd.Flags().BoolVar(&local, "local", false, "also dry-run every rendered object on a throwaway local control plane, the repository's CRDs and Namespaces applied to it first")
	cmd.Flags().StringVar(&charts, "charts", "", "folder of chart folders for HelmReleases whose chart is not in the repository (default: the charts folder `weir up` pushes)")
	addOfflineFlags(cmd, &offline, false)
	fetch.addFlags(cmd)
	return cmd
}

// refKey names an object for the checks: Kind/namespace/name.
func refKey(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// checkCluster checks one built cluster.
func checkCluster(all []*repo.Cluster, bc builtCluster, name string, strict bool) []*testCase {
	var cluster *repo.Cluster
	for _, c := range all {
		if c.Name == bc.Name && c.Path == bc.Path {
			cluster = c
		}
	}
	// What the cluster defines: the Flux objects of its tree and every
	// object its Kustomizations render.
	defined := map[string]bool{}
	if cluster != nil {
		defined[refKey(sourcev1.GitRepositoryKind, "flux-system", cluster.Source)] = true
		for _, o := range cluster.Objects {
			defined[refKey(o.GetKind(), orDefault(o.Namespace, o.GetNamespace()), o.GetName())] = true
		}
	}
	owner := map[string]string{}    // object -> the first Kustomization that applies it
	owners := map[string][]string{} // object -> every Kustomization that applies it
	var objectKeys []string
	var cases []*testCase
	var releases []*unstructured.Unstructured
	byCase := map[string]*testCase{}
	for _, k := range bc.Kustomizations {
		tc := &testCase{Cluster: name, Kind: kustomizev1.KustomizationKind, ID: k.Namespace + "/" + k.Name, File: k.File, Objects: len(k.Objects)}
		cases = append(cases, tc)
		byCase[refKey(tc.Kind, k.Namespace, k.Name)] = tc
		switch {
		case k.Skipped != "":
			tc.Warnings = append(tc.Warnings, "not rendered: "+k.Skipped)
		case k.Error != "":
			tc.Failures = append(tc.Failures, "does not build: "+k.Error)
		}
		if len(k.Unresolved) > 0 {
			msg := "variables left as written (their substituteFrom source is not in the repository): " + strings.Join(k.Unresolved, ", ")
			if strict {
				tc.Failures = append(tc.Failures, msg)
			} else {
				tc.Warnings = append(tc.Warnings, msg)
			}
		}
		for _, o := range k.Objects {
			key := refKey(o.GetKind(), o.GetNamespace(), o.GetName())
			defined[key] = true
			if _, ok := owner[key]; !ok {
				owner[key] = tc.ID
				objectKeys = append(objectKeys, key)
			}
			if !slices.Contains(owners[key], tc.ID) {
				owners[key] = append(owners[key], tc.ID)
			}
			if o.GetKind() == helmv2.HelmReleaseKind && strings.HasPrefix(o.GetAPIVersion(), helmv2.GroupVersion.Group+"/") {
				releases = append(releases, o)
			}
		}
	}
	for _, key := range objectKeys {
		if len(owners[key]) < 2 {
			continue
		}
		for _, id := range owners[key] {
			others := slices.DeleteFunc(slices.Clone(owners[key]), func(o string) bool { return o == id })
			ns, nm, _ := strings.Cut(id, "/")
			if tc := byCase[refKey(kustomizev1.KustomizationKind, ns, nm)]; tc != nil {
				tc.Failures = append(tc.Failures, fmt.Sprintf("%s is also applied by Kustomization %s: they would fight over it, and each prune would delete it", key, strings.Join(others, ", ")))
			}
		}
	}
	for _, hr := range releases {
		if byCase[refKey(helmv2.HelmReleaseKind, hr.GetNamespace(), hr.GetName())] != nil {
			continue // applied by two Kustomizations: reported on them
		}
		tc := &testCase{Cluster: name, Kind: helmv2.HelmReleaseKind, ID: hr.GetNamespace() + "/" + hr.GetName(), File: "applied by Kustomization " + owner[refKey(hr.GetKind(), hr.GetNamespace(), hr.GetName())]}
		cases = append(cases, tc)
		byCase[refKey(tc.Kind, hr.GetNamespace(), hr.GetName())] = tc
	}

	// References: dependsOn, sources, charts.
	g := &depgraph.Graph{}
	for key, tc := range byCase {
		kind, ns, nm := splitRef(key)
		var obj map[string]any
		for _, k := range bc.Kustomizations {
			if kind == kustomizev1.KustomizationKind && k.Namespace == ns && k.Name == nm && k.applied != nil {
				obj = k.applied.Object // as the Kustomization that applies it renders it
			} else if kind == kustomizev1.KustomizationKind && k.Namespace == ns && k.Name == nm && cluster != nil {
				for _, o := range cluster.Objects {
					if o.File == k.File && o.GetName() == nm && o.GetKind() == kind {
						obj = o.Object
					}
				}
			}
		}
		for _, hr := range releases {
			if kind == helmv2.HelmReleaseKind && hr.GetNamespace() == ns && hr.GetName() == nm {
				obj = hr.Object
			}
		}
		if obj == nil {
			continue
		}
		var deps []depgraph.Key
		list, _, _ := unstructured.NestedSlice(obj, "spec", "dependsOn")
		for _, d := range list {
			m, _ := d.(map[string]any)
			dn, _ := m["name"].(string)
			dns, _ := m["namespace"].(string)
			dns = orDefault(dns, ns)
			dk := kind
			if !defined[refKey(dk, dns, dn)] {
				other := helmv2.HelmReleaseKind
				if kind == helmv2.HelmReleaseKind {
					other = kustomizev1.KustomizationKind
				}
				if defined[refKey(other, dns, dn)] {
					dk = other
				} else {
					tc.Failures = append(tc.Failures, fmt.Sprintf("dependsOn %s/%s, which this cluster does not define", dns, dn))
				}
			}
			deps = append(deps, depgraph.Key{Kind: dk, Namespace: dns, Name: dn})
			tc.dependsOn = append(tc.dependsOn, refKey(dk, dns, dn))
		}
		g.Set(depgraph.Key{Kind: kind, Namespace: ns, Name: nm}, deps)
		for _, ref := range sourceRefs(kind, ns, nm, obj) {
			if !defined[ref] {
				tc.Failures = append(tc.Failures, fmt.Sprintf("its source %s is not defined in this cluster", strings.Replace(ref, "/", " ", 1)))
			}
		}
	}
	for key, tc := range byCase {
		kind, ns, nm := splitRef(key)
		if cyc := g.Cycle(depgraph.Key{Kind: kind, Namespace: ns, Name: nm}); cyc != nil {
			names := make([]string, len(cyc))
			for i, k := range cyc {
				names[i] = k.Namespace + "/" + k.Name
			}
			tc.Failures = append(tc.Failures, "dependency cycle: "+strings.Join(names, " -> "))
		}
	}
	slices.SortFunc(cases, func(a, b *testCase) int {
		return strings.Compare(a.Kind+" "+a.ID, b.Kind+" "+b.ID)
	})
	return cases
}

// sourceRefs are the sources an object needs, as Kind/namespace/name.
func sourceRefs(kind, namespace, name string, obj map[string]any) []string {
	ref := func(fields ...string) string {
		k, _, _ := unstructured.NestedString(obj, append(fields, "kind")...)
		n, _, _ := unstructured.NestedString(obj, append(fields, "name")...)
		ns, _, _ := unstructured.NestedString(obj, append(fields, "namespace")...)
		if k == "" || n == "" {
			return ""
		}
		return refKey(k, orDefault(ns, namespace), n)
	}
	var out []string
	switch kind {
	case kustomizev1.KustomizationKind:
		out = append(out, ref("spec", "sourceRef"))
	case helmv2.HelmReleaseKind:
		out = append(out, ref("spec", "chartRef"), ref("spec", "chart", "spec", "sourceRef"))
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

func splitRef(key string) (kind, namespace, name string) {
	kind, rest, _ := strings.Cut(key, "/")
	namespace, name, _ = strings.Cut(rest, "/")
	return kind, namespace, name
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// printTestCases prints a line per case and the summary, and returns how
// many failed.
func printTestCases(w io.Writer, cases []*testCase) int {
	failed, warned := 0, 0
	for _, tc := range cases {
		mark := "✔"
		switch {
		case len(tc.Failures) > 0:
			mark = "✗"
			failed++
		case len(tc.Warnings) > 0:
			mark = "⚠"
			warned++
		}
		what := ""
		if (tc.Kind == kustomizev1.KustomizationKind || tc.rendered) && len(tc.Failures) == 0 {
			what = ": " + plural(tc.Objects, "object")
		}
		fmt.Fprintf(w, "%s %s: %s %s%s\n", mark, tc.Cluster, tc.Kind, tc.ID, what)
		for _, f := range tc.Failures {
			fmt.Fprintf(w, "    ✗ %s\n", f)
		}
		for _, m := range tc.Warnings {
			fmt.Fprintf(w, "    ⚠ %s\n", m)
		}
	}
	fmt.Fprintf(w, "%d checked: %d passed, %d with warnings, %d failed\n", len(cases), len(cases)-failed-warned, warned, failed)
	return failed
}

// writeJUnit writes the cases as JUnit XML: a suite per cluster, a case
// per object, a failure per object that failed.
func writeJUnit(path string, cases []*testCase) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type junitCase struct {
		Name      string   `xml:"name,attr"`
		ClassName string   `xml:"classname,attr"`
		Failure   *failure `xml:"failure,omitempty"`
		SystemOut string   `xml:"system-out,omitempty"`
	}
	type suite struct {
		Name     string      `xml:"name,attr"`
		Tests    int         `xml:"tests,attr"`
		Failures int         `xml:"failures,attr"`
		Cases    []junitCase `xml:"testcase"`
	}
	var suites []*suite
	bySuite := map[string]*suite{}
	for _, tc := range cases {
		s := bySuite[tc.Cluster]
		if s == nil {
			s = &suite{Name: tc.Cluster}
			bySuite[tc.Cluster] = s
			suites = append(suites, s)
		}
		jc := junitCase{Name: tc.Kind + " " + tc.ID, ClassName: tc.File, SystemOut: strings.Join(tc.Warnings, "\n")}
		if len(tc.Failures) > 0 {
			jc.Failure = &failure{Message: tc.Failures[0], Text: strings.Join(tc.Failures, "\n")}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, jc)
	}
	b, err := xml.MarshalIndent(struct {
		XMLName xml.Name `xml:"testsuites"`
		Suites  []*suite `xml:"testsuite"`
	}{Suites: suites}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644); err != nil {
		return fmt.Errorf("writing --junit %s: %w", path, err)
	}
	return nil
}

// renderCharts renders the chart of each HelmRelease of the cluster, as
// `weir build hr` does, from the folder of the Kustomization that applies
// it: a template error fails the HelmRelease, a chart that cannot be had
// (no local copy, not fetched) is a warning. Charts see the API versions
// of the CRDs the cluster's Kustomizations render; when charts bring more
// CRDs (in crds/ or in templates), the charts that read
// .Capabilities.APIVersions are rendered again with those too.
func renderCharts(cmd *cobra.Command, rp *repo.Repository, charts chartSources, bc builtCluster, cases []*testCase, offline offlineOptions) {
	root := rp.Root()
	appliers := map[string]*builtKustomization{}
	var rendered []*unstructured.Unstructured
	for i, k := range bc.Kustomizations {
		appliers[k.Namespace+"/"+k.Name] = &bc.Kustomizations[i]
		rendered = append(rendered, k.Objects...)
	}
	caps := helm.Capabilities{KubeVersion: charts.kubeVersion, APIVersions: crdAPIVersions(rendered)}
	offline.cluster = bc.Path
	type outcome struct {
		r    *renderedHelmRelease
		objs []*unstructured.Unstructured
		err  error
	}
	renderOne := func(tc *testCase, caps helm.Capabilities) *outcome {
		by := strings.TrimPrefix(tc.File, "applied by Kustomization ")
		k, ok := appliers[by]
		if !ok {
			return nil
		}
		ns, name, _ := strings.Cut(tc.ID, "/")
		r, err := renderHelmRelease(cmd.Context(), helmRenderOptions{
			name: name, namespace: ns, root: root, charts: charts.charts, offline: offline, repository: rp,
			fetch: charts.fetch, caps: caps, applier: k.applier(),
			path: filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(path.Clean("/"+k.Path), "/"))),
		})
		if err != nil {
			return &outcome{err: err}
		}
		objs, err := releaseObjects(r.release, true)
		if err != nil {
			return &outcome{err: fmt.Errorf("its manifest does not parse: %w", err)}
		}
		return &outcome{r: r, objs: objs}
	}
	var releases []*testCase
	outcomes := map[*testCase]*outcome{}
	var fromCharts []*unstructured.Unstructured
	for _, tc := range cases {
		if tc.Kind != helmv2.HelmReleaseKind {
			continue
		}
		o := renderOne(tc, caps)
		if o == nil {
			continue
		}
		releases = append(releases, tc)
		outcomes[tc] = o
		if o.r != nil {
			fromCharts = append(fromCharts, o.objs...)
			fromCharts = append(fromCharts, chartCRDs(o.r.chart)...)
		}
	}
	all := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(caps.APIVersions), crdAPIVersions(fromCharts)...))))
	if len(all) > len(caps.APIVersions) {
		caps.APIVersions = all
		for _, tc := range releases {
			if o := outcomes[tc]; o.r != nil && readsAPIVersions(o.r.chart) {
				outcomes[tc] = renderOne(tc, caps)
			}
		}
	}
	for _, tc := range releases {
		o := outcomes[tc]
		var unavailable *chartUnavailableError
		switch {
		case errors.As(o.err, &unavailable):
			tc.Warnings = append(tc.Warnings, "chart not rendered: "+o.err.Error())
		case o.err != nil:
			tc.Failures = append(tc.Failures, "does not render: "+o.err.Error())
		default:
			tc.Objects = len(o.objs)
			tc.rendered = true
			tc.chartObjects, tc.chartCRDs, tc.releaseNamespace = o.objs, chartCRDs(o.r.chart), o.r.hr.GetReleaseNamespace()
			if o.r.stale != "" {
				tc.Warnings = append(tc.Warnings, "chart rendered from the cache: "+o.r.stale)
			}
		}
	}
}
