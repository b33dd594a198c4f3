package bucket

import (
	"context"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// ErrTooLarge is errTooLarge, for the tests of package bucket_test.
var ErrTooLarge = errTooLarge

// IndexThenDownload lists a bucket under listLimit bytes, then downloads
// it into dir under downloadLimit bytes, as a reconcile does with one
// limit, and returns the number of objects listed and each step's error.
func IndexThenDownload(ctx context.Context, endpoint, accessKey, secretKey, region, bucket, dir string, listLimit, downloadLimit int64) (int, error, error) {
	c, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""), Region: region})
	if err != nil {
		return 0, err, nil
	}
	bc := &bucketClient{store: &s3Store{c: c, bucket: bucket}, name: bucket, endpoint: endpoint}
	idx, err := bc.index(ctx, &sourcev1.Bucket{Spec: sourcev1.BucketSpec{BucketName: bucket}}, listLimit)
	if err != nil {
		return 0, err, nil
	}
	return idx.len(), nil, bc.download(ctx, idx, dir, downloadLimit)
}
