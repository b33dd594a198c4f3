// Package bucket reconciles Flux's Bucket objects
// (source.toolkit.fluxcd.io/v1): it lists the objects of a bucket under
// spec.prefix, minus the rules of the bucket's .sourceignore and of
// spec.ignore, downloads them when the list has changed, and stores them as
// a tarball in weir's artifact store, as the other sources do.
//
// Each provider is an objectStore, the little a reconcile needs of it
// (does the bucket exist, list the keys and ETags under a prefix, get an
// object): providers "generic" and "aws" with minio-go (any S3 API), "gcp"
// with the Cloud Storage client library and the service account key of
// spec.secretRef, "azure" with the Azure SDK's azblob and the account key,
// SAS token or service principal of spec.secretRef. The listing, the
// limits, the checks of keys and the downloads are the same for all.
//
// The revision is Flux's: the sha256 digest of the index of object keys
// and ETags ("<key> <etag>\n" for each key, sorted; for "azure" the hex of
// the ETag, as Flux writes it), written sha256:<hex>, so that listing the
// bucket is enough to tell that nothing changed. Status, conditions,
// reasons, events and metrics follow source-controller. Object keys are
// untrusted: a key that would leave the artifact's root ("..", an absolute
// path, an empty path element) fails the reconcile instead of being
// written, and the number and total size of the objects are bounded before
// anything is downloaded, and the bytes read again while downloading.
//
// Cloud identities stall with a message saying that weir does not support
// them yet: "aws" and "gcp" without secretRef, spec.serviceAccountName,
// spec.sts with provider "aws", and an "azure" managed identity. weir never
// asks a cloud's metadata server for credentials.
package bucket
