package bucket_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

// newGCS starts a Cloud Storage server with one bucket holding objects,
// and a Secret in ns with its service account key, named "gcs-key".
func newGCS(t *testing.T, ns, bucket string, objects map[string]string) *testenv.GCSServer {
	t.Helper()
	gcs := testenv.NewGCSServer(t)
	gcs.CreateBucket(t, bucket)
	gcs.PutObjects(t, bucket, objects)
	createSecret(t, ns, "gcs-key", map[string][]byte{"serviceaccount": gcs.ServiceAccountKey(t)})
	return gcs
}

// newGCSBucket creates a Bucket with provider "gcp" for a bucket of gcs,
// with the key of Secret "gcs-key".
func newGCSBucket(t *testing.T, ns, name string, gcs *testenv.GCSServer, bucket string, mutate func(*sourcev1.Bucket)) *sourcev1.Bucket {
	t.Helper()
	obj := &sourcev1.Bucket{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.BucketSpec{
			Provider:   sourcev1.BucketProviderGoogle,
			BucketName: bucket,
			Endpoint:   gcs.Endpoint,
			Insecure:   true,
			SecretRef:  &meta.LocalObjectReference{Name: "gcs-key"},
			Interval:   metav1.Duration{Duration: time.Hour},
			Timeout:    &metav1.Duration{Duration: 20 * time.Second},
		},
	}
	if mutate != nil {
		mutate(obj)
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating Bucket %s: %v", name, err)
	}
	return obj
}

func TestAGCPBucketIsStoredWithFluxsRevision(t *testing.T) {
	ns := env.Namespace(t)
	objects := map[string]string{
		"apps/a.yaml":   "a: 1\n",
		"apps/b.yaml":   "b: 2\n",
		"deep/x/y/z.md": "z",
		"other/c.yaml":  "c: 3\n",
	}
	gcs := newGCS(t, ns, "manifests", objects)
	obj := newGCSBucket(t, ns, "manifests", gcs, "manifests", nil)

	want := fluxRevision(gcs.ETags(t, "manifests", ""))
	got := waitReady(t, obj, want)
	digest := got.Status.Artifact.Digest
	if files := artifactFiles(t, got.Status.Artifact); !reflect.DeepEqual(files, objects) {
		t.Errorf("artifact holds %v, want %v", names(files), names(objects))
	}
	if ready := conditions.Get(got, meta.ReadyCondition); ready.Message != "stored artifact: revision '"+want+"'" {
		t.Errorf("Ready %s %q", ready.Reason, ready.Message)
	}
	if ev := waitEvent(t, ns, "manifests", "NewArtifact"); ev.Message != "stored artifact with 4 fetched files from 'manifests' bucket" {
		t.Errorf("NewArtifact event %q", ev.Message)
	}

	// A prefix lists only what is under it, and keys keep it.
	apps := newGCSBucket(t, ns, "apps", gcs, "manifests", func(b *sourcev1.Bucket) { b.Spec.Prefix = "apps/" })
	got = waitReady(t, apps, fluxRevision(gcs.ETags(t, "manifests", "apps/")))
	if files := artifactFiles(t, got.Status.Artifact); !reflect.DeepEqual(names(files), []string{"apps/a.yaml", "apps/b.yaml"}) {
		t.Errorf("artifact of prefix apps/ holds %v", names(files))
	}

	// Nothing changed: the same artifact, from the listing alone.
	if again := reconcileNow(t, obj); again.Status.Artifact.Revision != want || again.Status.Artifact.Digest != digest {
		t.Errorf("an unchanged bucket gave a new artifact: %s", describe(again))
	}
}

func TestAKustomizationAppliesFromAGCPBucketAndPrunesRemovedObjects(t *testing.T) {
	ns := env.Namespace(t)
	gcs := newGCS(t, ns, "cluster", map[string]string{
		"apps/one.yaml": configMap("one", "1"),
		"apps/two.yaml": configMap("two", "2"),
	})
	src := newGCSBucket(t, ns, "cluster", gcs, "cluster", nil)
	first := fluxRevision(gcs.ETags(t, "cluster", ""))
	waitReady(t, src, first)

	ks := newKustomizationOf(t, ns, "Bucket", "cluster")
	waitApplied(t, ks, first)
	waitConfigMap(t, ns, "one", "1")
	waitConfigMap(t, ns, "two", "2")

	gcs.RemoveObjects(t, "cluster", "apps/two.yaml")
	gcs.PutObjects(t, "cluster", map[string]string{"apps/one.yaml": configMap("one", "uno")})
	second := fluxRevision(gcs.ETags(t, "cluster", ""))
	requestReconcile(t, src)
	waitApplied(t, ks, second)
	waitConfigMap(t, ns, "one", "uno")
	waitPruned(t, ns, "two")
}

func TestAForeignServiceAccountKeyIsRefusedAndFixingItRecovers(t *testing.T) {
	ns := env.Namespace(t)
	gcs := newGCS(t, ns, "bkt", map[string]string{"a.yaml": "a"})
	foreign := gcs.ForeignServiceAccountKey(t)
	createSecret(t, ns, "wrong", map[string][]byte{"serviceaccount": foreign})
	obj := newGCSBucket(t, ns, "b", gcs, "bkt", func(b *sourcev1.Bucket) { b.Spec.SecretRef.Name = "wrong" })

	got := waitNotReady(t, obj)
	ready := conditions.Get(got, meta.ReadyCondition)
	t.Logf("Ready: %s", ready.Message)
	for _, want := range []string{"failed to confirm existence of 'bkt' bucket", "invalid_grant", "Invalid JWT Signature",
		"the service account key of secret 'wrong' was refused: check its 'serviceaccount'"} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("Ready message %q does not say %q", ready.Message, want)
		}
	}
	if ready.Reason != sourcev1.BucketOperationFailedReason || !conditions.IsTrue(got, sourcev1.FetchFailedCondition) || conditions.IsStalled(got) {
		t.Errorf("want FetchFailed, reason BucketOperationFailed, retried: %s", describe(got))
	}
	checkNotLeaked(t, ns, privateKeyLine(foreign), got.Status)

	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "wrong"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data["serviceaccount"] = gcs.ServiceAccountKey(t)
	if err := env.Client.Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, obj)
	waitReady(t, obj, fluxRevision(gcs.ETags(t, "bkt", "")))
}

func TestGCPSecretsAndBucketsThatCannotWork(t *testing.T) {
	ns := env.Namespace(t)
	gcs := newGCS(t, ns, "bkt", map[string]string{"a.yaml": "a"})
	// Object keys are untrusted with every provider.
	gcs.CreateBucket(t, "evil")
	gcs.PutObjects(t, "evil", map[string]string{"apps/ok.yaml": "ok", "../escape.yaml": "x"})
	createSecret(t, ns, "no-key", map[string][]byte{"accesskey": []byte("x")})
	createSecret(t, ns, "user-key", map[string][]byte{"serviceaccount": []byte(`{"type":"authorized_user","client_id":"x","client_secret":"y","refresh_token":"z"}`)})
	for _, tc := range []struct {
		name, bucket, secret, reason, want string
	}{
		{"missing-bucket", "nope", "gcs-key", sourcev1.BucketOperationFailedReason, "bucket 'nope' not found"},
		{"key-outside", "evil", "gcs-key", sourcev1.BucketOperationFailedReason,
			"indexation of objects from bucket 'evil' failed: object key '../escape.yaml' is not a relative path inside the bucket"},
		{"no-key", "bkt", "no-key", sourcev1.AuthenticationFailedReason, "invalid 'no-key' secret data: required fields 'serviceaccount'"},
		{"user-key", "bkt", "user-key", sourcev1.AuthenticationFailedReason,
			"invalid 'user-key' secret data: 'serviceaccount' is not a service account key in JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := waitNotReady(t, newGCSBucket(t, ns, tc.name, gcs, tc.bucket, func(b *sourcev1.Bucket) { b.Spec.SecretRef.Name = tc.secret }))
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready.Reason != tc.reason || !strings.HasPrefix(ready.Message, tc.want) {
				t.Errorf("want reason %s, message %q: %s", tc.reason, tc.want, describe(got))
			}
		})
	}
}

// privateKeyLine is a line from the middle of a service account key's
// private key, to look for in what weir writes.
func privateKeyLine(key []byte) string {
	lines := strings.Split(string(key), `\n`)
	return lines[len(lines)/2]
}

// newKustomizationOf creates a Kustomization that applies ./apps of a
// source into ns, with prune.
func newKustomizationOf(t *testing.T, ns, kind, name string) *kustomizev1.Kustomization {
	t.Helper()
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: time.Hour},
			Path:            "./apps",
			Prune:           true,
			TargetNamespace: ns,
			Timeout:         &metav1.Duration{Duration: 30 * time.Second},
			SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: kind, Name: name},
		},
	}
	if err := env.Client.Create(context.Background(), ks); err != nil {
		t.Fatal(err)
	}
	return ks
}

// waitPruned waits until the ConfigMap is gone.
func waitPruned(t *testing.T, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ConfigMap %s was not pruned after its object left the bucket (get: %v)", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
