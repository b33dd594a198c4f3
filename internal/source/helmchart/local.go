package helmchart

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/fluxcd/pkg/runtime/transform"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"sigs.k8s.io/yaml"
)

// inRoot turns a path of the spec, relative to a source's root, into a
// path under root: ".." cannot climb above it, as with source-controller's
// secure joins. Links cannot leave it either: artifact.Store.Extract
// refuses those that would.
func inRoot(root, p string) string {
	return filepath.Join(root, filepath.FromSlash(path.Clean("/"+p)))
}

// buildLocal builds the chart at spec.chart inside the unpacked source at
// root, as source-controller does for a GitRepository: the folder is
// packaged (its file:// dependencies added), or a packaged chart copied;
// the version gets build metadata meta when set; values files, relative
// to the source's root, are merged into the chart's defaults. A chart
// whose name and version are those stored is not built again.
func (r *Reconciler) buildLocal(ctx context.Context, obj *sourcev1.HelmChart, root, meta string) (*build, error) {
	chartPath := inRoot(root, obj.Spec.Chart)
	fi, err := os.Stat(chartPath)
	if err != nil {
		return nil, failBuild(errChartReference, "no chart at path '%s' in the source", obj.Spec.Chart)
	}
	var c *chart.Chart
	if fi.IsDir() {
		c, err = loader.LoadDir(chartPath)
	} else {
		c, err = loader.LoadFile(chartPath)
	}
	if err != nil {
		return nil, failBuild(errChartReference, "path '%s' is not a Helm chart: %w", obj.Spec.Chart, err)
	}
	if err := c.Validate(); err != nil {
		return nil, failBuild(errChartReference, "the chart at '%s' is not valid: %w", obj.Spec.Chart, err)
	}
	version, err := withMetadata(c.Metadata.Version, meta)
	if err != nil {
		return nil, err
	}
	files := valuesFiles(obj)
	packaged := fi.IsDir() || meta != "" || len(files) > 0
	if r.upToDate(obj, c.Name(), version) {
		return cachedBuild(obj, c.Name(), version, packaged), nil
	}

	b := &build{name: c.Name(), version: version, packaged: packaged}
	if !packaged {
		if b.tgz, err = os.ReadFile(chartPath); err != nil {
			return nil, failBuild(errChartPull, "reading the chart at '%s': %w", obj.Spec.Chart, err)
		}
		return b, nil
	}
	if len(files) > 0 {
		merged, used, err := mergeFileValues(root, obj.Spec.ValuesFiles, obj.Spec.IgnoreMissingValuesFiles)
		if err != nil {
			return nil, &buildError{reason: errValuesFiles, err: err}
		}
		if err := overwriteValues(c, merged); err != nil {
			return nil, &buildError{reason: errValuesFiles, err: err}
		}
		b.valuesFiles = used
	}
	c.Metadata.Version = version
	if fi.IsDir() {
		if err := addLocalDependencies(c, root, chartPath); err != nil {
			return nil, &buildError{reason: errDependencyBuild, err: err}
		}
		// Files unpacked from the source carry the time of unpacking.
		c.StampModTimes(packedModTime)
	}
	if b.tgz, err = pack(c); err != nil {
		return nil, &buildError{reason: errChartPackage, err: err}
	}
	return b, nil
}

// mergeFileValues merges the files at paths, relative to the source's
// root, in order, into one values map, as source-controller does for a
// chart from a GitRepository. A missing file fails, unless ignoreMissing.
// It returns the files that were merged.
func mergeFileValues(root string, paths []string, ignoreMissing bool) (map[string]any, []string, error) {
	merged := map[string]any{}
	used := make([]string, 0, len(paths))
	for _, p := range paths {
		full := inRoot(root, p)
		fi, err := os.Stat(full)
		switch {
		case err != nil && os.IsNotExist(err) && ignoreMissing:
			continue
		case err != nil || !fi.Mode().IsRegular():
			return nil, nil, fmt.Errorf("no values file found at path '%s' in the source", p)
		}
		data, err := os.ReadFile(full)
		if err != nil {
			return nil, nil, fmt.Errorf("could not read values from file '%s': %w", p, err)
		}
		values := map[string]any{}
		if err := yaml.Unmarshal(data, &values); err != nil {
			return nil, nil, fmt.Errorf("unmarshaling values from '%s' failed: %w", p, err)
		}
		merged = transform.MergeMaps(merged, values)
		used = append(used, p)
	}
	return merged, used, nil
}

// addLocalDependencies adds to c the dependencies of its Chart.yaml that
// its charts/ folder lacks and that live in the same source
// (repository "file://<path>", relative to the chart's folder), checking
// each against its version range. A dependency from a chart repository
// must be vendored in charts/ (`helm dependency build`, committed).
func addLocalDependencies(c *chart.Chart, root, chartDir string) error {
	have := map[string]bool{}
	for _, d := range c.Dependencies() {
		have[d.Name()] = true
	}
	for _, dep := range c.Metadata.Dependencies {
		if have[dep.Name] {
			continue
		}
		local, ok := strings.CutPrefix(dep.Repository, "file://")
		if !ok {
			where := dep.Repository
			if where == "" {
				where = "no repository"
			}
			return fmt.Errorf("dependency '%s' (%s) is not in the chart's charts/ folder: weir adds only file:// dependencies; run `helm dependency build` and commit charts/", dep.Name, where)
		}
		rel, err := filepath.Rel(root, filepath.Join(chartDir, filepath.FromSlash(local)))
		if err != nil || !filepath.IsLocal(rel) {
			return fmt.Errorf("dependency '%s' at '%s' is outside the source", dep.Name, dep.Repository)
		}
		sub, err := loader.Load(filepath.Join(root, rel))
		if err != nil {
			return fmt.Errorf("loading dependency '%s' from '%s': %w", dep.Name, dep.Repository, err)
		}
		if dep.Version != "" {
			want, err := semver.NewConstraint(dep.Version)
			if err != nil {
				return fmt.Errorf("dependency '%s' has the version range '%s', which is not semver: %w", dep.Name, dep.Version, err)
			}
			got, err := semver.NewVersion(sub.Metadata.Version)
			if err != nil || !want.Check(got) {
				return fmt.Errorf("dependency '%s' from '%s' has version '%s', outside its range '%s'", dep.Name, dep.Repository, sub.Metadata.Version, dep.Version)
			}
		}
		if sub.Name() != dep.Name {
			// Helm names a subchart by its own Chart.yaml; a mismatch
			// would leave the dependency unresolved at install time.
			return fmt.Errorf("dependency '%s' at '%s' is a chart named '%s'", dep.Name, dep.Repository, sub.Name())
		}
		c.AddDependency(sub)
		have[dep.Name] = true
	}
	return nil
}
