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
// Writes are atomic, so that runs may share the folder.
//
// Use a Fetcher:
//
//	f := &chartfetch.Fetcher{Cache: dir}
//	ch, err := f.OCIRepository(ctx, obj)
//	// ch.Path is the chart package; an *UnavailableError says the chart
//	// could not be had (offline, unreachable, credentials not available).
package chartfetch
