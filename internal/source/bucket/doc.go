// Package bucket reconciles Flux's Bucket objects
// (source.toolkit.fluxcd.io/v1): it lists the objects of an S3 bucket
// (any S3 API, with minio-go, for providers "generic" and "aws"), under
// spec.prefix and minus the rules of the bucket's .sourceignore and of
// spec.ignore, downloads them when the list has changed, and stores them as
// a tarball in weir's artifact store, as the other sources do.
//
// The revision is Flux's: the sha256 digest of the index of object keys
// and ETags ("<key> <etag>\n" for each key, sorted), written sha256:<hex>,
// so that listing the bucket is enough to tell that nothing changed.
// Status, conditions, reasons, events and metrics follow
// source-controller. Object keys are untrusted: a key that would leave the
// artifact's root ("..", an absolute path, an empty path element) fails
// the reconcile instead of being written, and the number and total size of
// the objects are bounded before anything is downloaded.
//
// Providers "gcp" and "azure", and the cloud identities of "aws" (no
// secretRef, spec.serviceAccountName, spec.sts with provider "aws"), stall
// with a message saying that weir does not support them yet.
package bucket
