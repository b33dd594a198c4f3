// Package helmchart reconciles Flux's HelmChart objects
// (source.toolkit.fluxcd.io/v1, and v1beta2 served from the same storage):
// it builds a Helm chart from its source and stores the package, a .tgz,
// as the artifact that HelmReleases install, as source-controller does.
//
// The source (spec.sourceRef, in the HelmChart's namespace) is one of:
//
//   - a HelmRepository of type default: spec.version (a semver range,
//     "*" by default) is resolved against the index the HelmRepository
//     stored, and the chart is downloaded with the repository's
//     credentials;
//   - a HelmRepository of type oci: the version is resolved among the tags
//     of oci://<url>/<chart> (no listing for an exact version) and the
//     chart layer is pulled with go-containerregistry;
//   - a GitRepository: spec.chart is a path in its artifact, a chart
//     folder that is packaged (file:// dependencies added) or a packaged
//     chart.
//
// The package is stored as it was pulled unless something changes it:
// spec.valuesFiles merged into the chart's values.yaml (files of the chart
// for a HelmRepository, files of the source for a GitRepository), build
// metadata on the version (the generation with valuesFiles, the commit
// with reconcileStrategy Revision). The artifact revision is the chart
// version, <version>, or <version>+<12 hex digits of the commit> for
// Revision. As in Flux, a chart whose name and version are those stored
// is not fetched or packaged again: a new commit that keeps the version
// of a chart folder does not change the artifact under the ChartVersion
// strategy.
//
// A new artifact of a source (an index, a commit) queues the HelmCharts
// that build from it at once, through a watch indexed by spec.sourceRef.
// Status, conditions, reasons and events follow source-controller.
package helmchart
