// Package artifactgenerator reconciles Flux's ArtifactGenerator objects
// (source.extensions.fluxcd.io/v1beta1, the API of Flux's source-watcher):
// it composes ExternalArtifacts (source.toolkit.fluxcd.io/v1) from the
// artifacts of GitRepositories, OCIRepositories, Buckets, HelmCharts and
// other ExternalArtifacts, or splits one source into several.
//
// Each entry of spec.artifacts is built by its copy operations, in order,
// from the sources' trees (unpacked from weir's artifact store) into a
// fresh folder: "@alias/path" names a file or folder of a source, globs
// select several ("dir/**" copies the contents of dir), exclude leaves
// paths out, and the Merge and Extract strategies merge YAML values files
// and unpack tarballs. The folder is archived into the store as the
// artifact of an ExternalArtifact of that name, which the generator owns:
// its revision is latest@sha256:<digest of the archive> (or the revision
// of the source spec revision names), as source-watcher writes it. An
// output whose content did not change keeps its artifact as it was, so
// the Kustomizations and HelmReleases built from it are not queued.
//
// A new artifact of any source queues its generators at once. The
// generator's status lists the ExternalArtifacts it made (inventory);
// those it no longer declares are deleted with their artifacts, and all of
// them when the generator is deleted. Conditions, reasons and messages
// follow source-watcher, except that a copy operation that cannot be
// carried out (an unknown alias, a glob matching nothing, a path leaving
// its root) stalls the generator until its spec or a source changes,
// instead of being retried.
package artifactgenerator
