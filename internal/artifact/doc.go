// Package artifact is the content-addressed artifact store of weir's source
// reconcilers, the counterpart of Flux source-controller's storage.
//
// A source reconciler fetches a tree (a Git checkout, an OCI layer), packs it
// with Store.Archive into a reproducible tar.gz and records the returned
// meta.Artifact in the object's status. Consumers (the Kustomization and
// HelmRelease reconcilers, weir build) fetch it by its URL or read it through
// Store.Path, and Store.Extract unpacks it, for instance to copy one source's
// tree into a sub-path of another's.
//
//	store := &artifact.Store{Root: "/var/lib/weir/artifacts", BaseURL: "http://127.0.0.1:9090"}
//	ignore, err := artifact.NewIgnore(checkout, repo.Spec.Ignore)
//	if err != nil { ... }
//	a, err := store.Archive(ctx, artifact.Ref{Kind: "GitRepository", Namespace: ns, Name: name}, "main@sha1:"+sha, checkout, ignore)
//	if err != nil { ... }
//	repo.Status.Artifact = a
//	_, err = store.GC(ref, a)
//
// Files live under Root as <kind>/<namespace>/<name>/<sha256 hex>.tar.gz, the
// kind lowercased (<sha256 hex>.yaml for a Helm repository index, see
// Store.CopyYAML). The same tree always gives the same bytes, hence the same
// digest and the same file: entries are sorted, modes normalised, times and
// owners dropped. What goes into an archive follows Flux's rules (see
// NewIgnore), and archives are treated as untrusted on the way out: Extract
// refuses entries and links that leave the destination and bounds the
// unpacked size. Store.Handler serves the files read-only over HTTP.
//
// Archive writes each file atomically (a temporary file in the same folder,
// then a rename), so a reader never sees a partial artifact. The store holds
// no lock: it relies on an object being reconciled by one worker at a time,
// as controller-runtime guarantees.
package artifact
