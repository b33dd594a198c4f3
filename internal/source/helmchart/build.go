package helmchart

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/fluxcd/pkg/runtime/transform"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"sigs.k8s.io/yaml"
)

// build is the outcome of building a HelmChart: the chart's name and
// version (with build metadata when weir adds some), and the package to
// store, or nil when the stored one is current.
type build struct {
	name, version string
	// tgz is the packaged chart; nil when the stored artifact already
	// holds this name and version.
	tgz []byte
	// packaged is true when weir packaged the chart (from a folder, with
	// merged values or a new version), false when it is stored as pulled.
	packaged bool
	// valuesFiles are the values files merged into the chart's defaults.
	valuesFiles []string
	// verified is true when the package's signature was checked against
	// spec.verify.
	verified bool
}

// summary is source-controller's description of a build, the message of
// the ArtifactInStorage and Ready conditions and of the event.
func (b *build) summary() string {
	action := "pulled"
	if b.packaged {
		action = "packaged"
	}
	s := fmt.Sprintf("%s '%s' chart with version '%s'", action, b.name, b.version)
	if len(b.valuesFiles) > 0 {
		s += fmt.Sprintf(" and merged values files %v", b.valuesFiles)
	}
	return s
}

// reason is the event and condition reason of a successful build.
func (b *build) reason() string {
	if b.packaged {
		return sourcev1.ChartPackageSucceededReason
	}
	return sourcev1.ChartPullSucceededReason
}

// buildReason is why a build failed, in source-controller's words: the
// condition reason and the prefix of the message.
type buildReason struct{ reason, summary string }

var (
	errChartReference  = buildReason{"InvalidChartReference", "invalid chart reference"}
	errChartPull       = buildReason{"ChartPullError", "chart pull error"}
	errMetadataPatch   = buildReason{"MetadataPatchError", "chart metadata patch error"}
	errValuesFiles     = buildReason{"ValuesFilesError", "values files merge error"}
	errDependencyBuild = buildReason{"DependencyBuildError", "dependency build error"}
	errChartPackage    = buildReason{"ChartPackageError", "chart package error"}
)

// buildError is a failed build, with source-controller's reason.
type buildError struct {
	reason buildReason
	err    error
}

func (e *buildError) Error() string {
	if e.reason.summary == "" {
		return e.err.Error()
	}
	return e.reason.summary + ": " + e.err.Error()
}
func (e *buildError) Unwrap() error { return e.err }

// persistent says whether only a change of the spec or of the source can
// fix the failure, as source-controller decides: it is then not retried.
func (e *buildError) persistent() bool {
	if errors.Is(e.err, errCannotVerify) {
		return true
	}
	switch e.reason {
	case errChartReference, errMetadataPatch, errValuesFiles:
		return true
	}
	return false
}

// condition is the condition that records the failure: BuildFailed for a
// failure to assemble the chart, FetchFailed for one to get it.
func (e *buildError) condition() string {
	switch e.reason {
	case errMetadataPatch, errValuesFiles, errDependencyBuild, errChartPackage, errChartVerification:
		return sourcev1.BuildFailedCondition
	case errVerifySetup:
		return sourcev1.SourceVerifiedCondition
	}
	return sourcev1.FetchFailedCondition
}

func failBuild(reason buildReason, format string, args ...any) error {
	return &buildError{reason: reason, err: fmt.Errorf(format, args...)}
}

// valuesFiles returns spec.valuesFiles, or nothing when it only names the
// chart's own values.yaml, as source-controller does: the chart then needs
// no packaging.
func valuesFiles(obj *sourcev1.HelmChart) []string {
	files := obj.Spec.ValuesFiles
	if len(files) == 1 && path.Clean(files[0]) == chartutil.ValuesfileName {
		return nil
	}
	return files
}

// generationMetadata is the build metadata that tells consumers the merged
// values changed: the object's generation, when valuesFiles are set, after
// other metadata if any, as source-controller appends it.
func generationMetadata(obj *sourcev1.HelmChart, meta string) string {
	if len(valuesFiles(obj)) == 0 {
		return meta
	}
	gen := strconv.FormatInt(obj.Generation, 10)
	if meta == "" {
		return gen
	}
	return meta + "." + gen
}

// withMetadata sets the semver build metadata of version.
func withMetadata(version, meta string) (string, error) {
	if meta == "" {
		return version, nil
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return "", &buildError{reason: errMetadataPatch, err: fmt.Errorf("failed to parse version from chart metadata as SemVer: %w", err)}
	}
	nv, err := v.SetMetadata(meta)
	if err != nil {
		return "", &buildError{reason: errMetadataPatch, err: fmt.Errorf("failed to set SemVer metadata on chart version: %w", err)}
	}
	return nv.String(), nil
}

// upToDate reports whether the stored artifact holds this chart name and
// version, built for the current generation: nothing needs fetching or
// packaging, as source-controller decides from its cached chart.
func (r *Reconciler) upToDate(obj *sourcev1.HelmChart, name, version string) bool {
	a := obj.Status.Artifact
	return a != nil && obj.Status.ObservedChartName == name && a.Revision == version &&
		obj.Generation == obj.Status.ObservedGeneration && r.Store.Has(a)
}

// cachedBuild describes the stored artifact, current for name and version.
func cachedBuild(obj *sourcev1.HelmChart, name, version string, packaged bool) *build {
	b := &build{name: name, version: version, packaged: packaged, valuesFiles: valuesFiles(obj)}
	if obj.Status.ObservedValuesFiles != nil {
		b.valuesFiles = obj.Status.ObservedValuesFiles
	}
	return b
}

// buildRemote turns a chart package pulled from a repository into the
// build to store: as it is when nothing changes it, else loaded, given
// version (which carries build metadata when hasMetadata), its values
// merged from files inside the chart, and packaged again.
func buildRemote(obj *sourcev1.HelmChart, tgz []byte, name, version string, hasMetadata bool) (*build, error) {
	b := &build{name: name, version: version}
	c, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		return nil, failBuild(errChartPull, "the package of '%s' version '%s' is not a valid chart: %w", name, version, err)
	}
	if err := c.Validate(); err != nil {
		return nil, failBuild(errChartPull, "the package of '%s' version '%s' is not a valid chart: %w", name, version, err)
	}
	files := valuesFiles(obj)
	if len(files) == 0 && !hasMetadata {
		b.tgz = tgz
		return b, nil
	}
	c.Metadata.Version = version
	merged, used, err := mergeChartValues(c, obj.Spec.ValuesFiles, obj.Spec.IgnoreMissingValuesFiles)
	if err != nil {
		return nil, &buildError{reason: errValuesFiles, err: fmt.Errorf("failed to merge chart values: %w", err)}
	}
	if len(files) > 0 {
		if err := overwriteValues(c, merged); err != nil {
			return nil, &buildError{reason: errValuesFiles, err: err}
		}
		b.valuesFiles = used
	}
	if b.tgz, err = pack(c); err != nil {
		return nil, &buildError{reason: errChartPackage, err: err}
	}
	b.packaged = true
	return b, nil
}

// mergeChartValues merges the chart's files at paths, in order, into one
// values map, as source-controller does for a chart from a repository:
// "values.yaml" is the chart's defaults, other paths are files of the
// chart. A missing file fails, unless ignoreMissing. It returns the files
// that were merged.
func mergeChartValues(c *chart.Chart, paths []string, ignoreMissing bool) (map[string]any, []string, error) {
	merged := map[string]any{}
	used := make([]string, 0, len(paths))
	for _, p := range paths {
		name := path.Clean(p)
		if name == chartutil.ValuesfileName {
			merged = transform.MergeMaps(merged, c.Values)
			used = append(used, p)
			continue
		}
		var data []byte
		for _, f := range c.Files {
			if f.Name == name {
				data = f.Data
				break
			}
		}
		if data == nil {
			if ignoreMissing {
				continue
			}
			return nil, nil, fmt.Errorf("no values file found at path '%s' in chart '%s'", p, c.Name())
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

// overwriteValues makes values the chart's defaults: values.yaml in the
// package, and the chart's Values.
func overwriteValues(c *chart.Chart, values map[string]any) error {
	var buf bytes.Buffer
	if len(values) > 0 {
		if err := common.Values(values).Encode(&buf); err != nil {
			return fmt.Errorf("encoding the merged values: %w", err)
		}
	}
	c.Values = values
	for _, f := range c.Raw {
		if f.Name == chartutil.ValuesfileName {
			f.Data = buf.Bytes()
			return nil
		}
	}
	// A chart without values.yaml gets one.
	c.Raw = append(c.Raw, &common.File{Name: chartutil.ValuesfileName, Data: buf.Bytes()})
	return nil
}

// packedModTime is the time of every file of a chart weir packages from a
// folder: the same files give the same bytes, hence the same digest.
var packedModTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// pack writes c as Helm packages charts (helm package) and returns the
// archive.
func pack(c *chart.Chart) ([]byte, error) {
	dir, err := os.MkdirTemp("", "helmchart-package-")
	if err != nil {
		return nil, fmt.Errorf("creating a folder to package the chart in: %w", err)
	}
	defer os.RemoveAll(dir)
	p, err := chartutil.Save(c, dir)
	if err != nil {
		return nil, fmt.Errorf("failed to package chart: %w", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading the packaged chart: %w", err)
	}
	return b, nil
}

// shortRevision is the commit (or digest) of a source revision such as
// main@sha1:<hex>, cut to 12 hex digits as source-controller does for the
// Revision strategy: enough to be unique, short enough for labels.
func shortRevision(revision string) string {
	hex := revision
	if i := strings.LastIndex(hex, ":"); i >= 0 {
		hex = hex[i+1:]
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}
