package helmchart_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

func TestAChartFromABucket(t *testing.T) {
	ns := env.Namespace(t)
	s3 := testenv.NewS3Server(t, "weir-access", "weir-secret-key")
	s3.CreateBucket(t, "charts")
	s3.PutObjects(t, "charts", chartFiles("0.1.0", "hello"))
	createSecret(t, ns, "s3-creds", "", map[string][]byte{"accesskey": []byte("weir-access"), "secretkey": []byte("weir-secret-key")})
	bucket := &sourcev1.Bucket{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "charts"},
		Spec: sourcev1.BucketSpec{
			BucketName: "charts",
			Endpoint:   s3.Endpoint,
			Insecure:   true,
			SecretRef:  &meta.LocalObjectReference{Name: "s3-creds"},
			Interval:   metav1.Duration{Duration: time.Hour},
		},
	}
	if err := env.Client.Create(context.Background(), bucket); err != nil {
		t.Fatal(err)
	}

	obj := newHelmChart(t, ns, "app", sourcev1.LocalHelmChartSourceReference{Kind: sourcev1.BucketKind, Name: "charts"}, "./charts/app", "",
		func(hc *sourcev1.HelmChart) { hc.Spec.ReconcileStrategy = sourcev1.ReconcileStrategyRevision })
	// With the Revision strategy, the version carries the first 12 hex
	// digits of the Bucket's digest, as in Flux.
	got := waitChart(t, obj, "a chart from the Bucket", func(o *sourcev1.HelmChart) bool {
		return conditions.IsReady(o) && o.Status.Artifact != nil && strings.HasPrefix(o.Status.Artifact.Revision, "0.1.0+")
	})
	bucket = waitObject(t, bucket, "the Bucket", func(b *sourcev1.Bucket) bool { return b.Status.Artifact != nil })
	digest := strings.TrimPrefix(bucket.Status.Artifact.Revision, "sha256:")
	if got.Status.Artifact.Revision != "0.1.0+"+digest[:12] || got.Status.ObservedSourceArtifactRevision != bucket.Status.Artifact.Revision {
		t.Errorf("chart %s from source revision %s, Bucket at %s", got.Status.Artifact.Revision, got.Status.ObservedSourceArtifactRevision, bucket.Status.Artifact.Revision)
	}
	files := testenv.TarFiles(t, testenv.Download(t, got.Status.Artifact))
	if _, ok := files["app/templates/configmap.yaml"]; !ok {
		t.Errorf("the package holds %v", files)
	}

	// A new object in the bucket: the Bucket's new artifact queues the
	// chart, which gets a new version.
	s3.PutObjects(t, "charts", map[string]string{"charts/app/values.yaml": "data:\n  greeting: bonjour\n"})
	requestBucketReconcile(t, bucket)
	waitChart(t, obj, "a chart from the Bucket's new revision", func(o *sourcev1.HelmChart) bool {
		return conditions.IsReady(o) && o.Status.Artifact != nil && o.Status.Artifact.Revision != got.Status.Artifact.Revision
	})
}

func requestBucketReconcile(t *testing.T, obj *sourcev1.Bucket) {
	t.Helper()
	got := &sourcev1.Bucket{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	got.SetAnnotations(map[string]string{meta.ReconcileRequestAnnotation: time.Now().Format(time.RFC3339Nano)})
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatal(err)
	}
}
