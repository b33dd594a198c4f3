package bucket_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/weirhq/weir/internal/source/bucket"
	"github.com/weirhq/weir/internal/testenv"
)

// A bucket larger than the limit is refused from its listing, before any
// download, and a download that reads more than the limit stops.
func TestSizesAreBounded(t *testing.T) {
	s3 := testenv.NewS3Server(t, accessKey, secretKey)
	s3.CreateBucket(t, "bkt")
	s3.PutObjects(t, "bkt", map[string]string{"a.yaml": strings.Repeat("a", 600), "b.yaml": strings.Repeat("b", 600)})
	fetch := func(listLimit, downloadLimit int64) (int, error, error) {
		return bucket.IndexThenDownload(context.Background(), s3.Endpoint, accessKey, secretKey, testenv.S3Region, "bkt", t.TempDir(), listLimit, downloadLimit)
	}

	before := s3.Requests()
	if _, err, _ := fetch(1000, 1000); err == nil || !strings.Contains(err.Error(), "come to more than the 1000 bytes limit") {
		t.Errorf("listing under a 1000 bytes limit: %v", err)
	}
	if n := s3.Requests() - before; n > 3 {
		t.Errorf("a refused listing made %d requests: nothing should be downloaded", n)
	}
	if n, _, err := fetch(2000, 1000); n != 2 || !errors.Is(err, bucket.ErrTooLarge) {
		t.Errorf("download under a 1000 bytes limit: %d objects listed, %v", n, err)
	}
	if n, lerr, derr := fetch(2000, 2000); n != 2 || lerr != nil || derr != nil {
		t.Errorf("within the limit: %d objects, %v, %v", n, lerr, derr)
	}
}
