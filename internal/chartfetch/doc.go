// Package chartfetch fetches the charts of HelmReleases for the commands
// that render them without a cluster (`weir test`): from an OCIRepository
// (chartRef), from a HelmRepository of type oci, or from the index of a
// HelmRepository of type default, choosing the version as
// source-controller does.
//
// What it fetches is kept in a cache folder, keyed by content digest: a
// manifest by its digest, a chart package by the digest of its layer or
// of the index entry. A digest ref, or a chart the cache already holds,
// costs no download; resolving a tag costs one HEAD request, and a
// repository's index is asked for again only if it changed. With Offline
// set, or when the source cannot be reached, the cache answers alone: the
// last resolution of a tag or range, the last index of a repository.
// Writes are atomic, so that runs may share the folder. A host found down
// is tried once per run.
//
// Use a Fetcher, one per run, and WithSecrets for each HelmRelease whose
// sources' secretRefs are read from what the repository holds:
//
//	f := &chartfetch.Fetcher{Cache: chartfetch.DefaultCache()}
//	ch, err := f.WithSecrets(secrets).OCIRepository(ctx, obj)
//	// ch.Path is the chart package, ch.Stale says why it is the one the
//	// source gave last; an *UnavailableError says the chart could not be
//	// had (offline and not cached, unreachable, credentials not in the
//	// repository), any other error that the source does not have it.
package chartfetch
