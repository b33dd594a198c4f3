package bucket_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const (
	accessKey = "weir-access"
	secretKey = "weir-s3cret-key-0123456789"
)

// newServer starts an S3 server with one bucket holding objects, and a
// Secret in ns with its credentials, named "s3-creds".
func newServer(t *testing.T, ns, bucket string, objects map[string]string) *testenv.S3Server {
	t.Helper()
	s3 := testenv.NewS3Server(t, accessKey, secretKey)
	s3.CreateBucket(t, bucket)
	s3.PutObjects(t, bucket, objects)
	createSecret(t, ns, "s3-creds", map[string][]byte{"accesskey": []byte(accessKey), "secretkey": []byte(secretKey)})
	return s3
}

// newBucket creates a Bucket for a bucket of s3, with the credentials of
// Secret "s3-creds" and a long interval, so that every reconcile a test
// sees comes from a change or a request.
func newBucket(t *testing.T, ns, name string, s3 *testenv.S3Server, bucket string, mutate func(*sourcev1.Bucket)) *sourcev1.Bucket {
	t.Helper()
	obj := &sourcev1.Bucket{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.BucketSpec{
			Provider:   sourcev1.BucketProviderGeneric,
			BucketName: bucket,
			Endpoint:   s3.Endpoint,
			Insecure:   true,
			SecretRef:  &meta.LocalObjectReference{Name: "s3-creds"},
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

// fluxRevision computes a Bucket's revision as source-controller does: the
// sha256 of "<key> <etag>\n" for each key, sorted.
func fluxRevision(etags map[string]string) string {
	keys := make([]string, 0, len(etags))
	for k := range etags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s %s\n", k, etags[k])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// waitFor polls the object until cond holds or the timeout ends.
func waitFor(t *testing.T, timeout time.Duration, what string, obj client.Object, cond func(*sourcev1.Bucket) bool) *sourcev1.Bucket {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := &sourcev1.Bucket{}
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got)
		if err == nil && cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last status: %s", timeout, what, describe(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady waits until Ready=True with the given artifact revision.
func waitReady(t *testing.T, obj client.Object, revision string) *sourcev1.Bucket {
	t.Helper()
	return waitFor(t, 30*time.Second, "Ready with revision "+revision, obj, func(o *sourcev1.Bucket) bool {
		return conditions.IsReady(o) && o.Status.Artifact != nil && o.Status.Artifact.Revision == revision &&
			o.Status.ObservedGeneration == o.Generation
	})
}

// waitNotReady waits until Ready=False and returns the object.
func waitNotReady(t *testing.T, obj client.Object) *sourcev1.Bucket {
	t.Helper()
	return waitFor(t, 30*time.Second, "Ready=False", obj, func(o *sourcev1.Bucket) bool {
		return conditions.IsFalse(o, meta.ReadyCondition) && o.Status.ObservedGeneration == o.Generation
	})
}

func describe(o *sourcev1.Bucket) string {
	s := ""
	for _, c := range o.Status.Conditions {
		s += fmt.Sprintf("[%s=%s %s: %s] ", c.Type, c.Status, c.Reason, c.Message)
	}
	if o.Status.Artifact != nil {
		s += "artifact " + o.Status.Artifact.Revision
	}
	return s
}

// requestReconcile sets reconcile.fluxcd.io/requestedAt as `flux reconcile`
// does and returns its value.
func requestReconcile(t *testing.T, obj client.Object) string {
	t.Helper()
	got := &sourcev1.Bucket{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	at := time.Now().Format(time.RFC3339Nano)
	ann := got.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[meta.ReconcileRequestAnnotation] = at
	got.SetAnnotations(ann)
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatalf("requesting a reconcile: %v", err)
	}
	return at
}

// reconcileNow requests a reconcile and waits until it has been handled.
func reconcileNow(t *testing.T, obj client.Object) *sourcev1.Bucket {
	t.Helper()
	at := requestReconcile(t, obj)
	return waitFor(t, 30*time.Second, "the reconcile request to be handled", obj, func(o *sourcev1.Bucket) bool {
		ready := conditions.Get(o, meta.ReadyCondition)
		return o.Status.LastHandledReconcileAt == at && ready != nil && ready.Status != metav1.ConditionUnknown
	})
}

// artifactFiles downloads the artifact and returns the files it holds.
func artifactFiles(t *testing.T, a *meta.Artifact) map[string]string {
	t.Helper()
	return testenv.TarFiles(t, testenv.Download(t, a))
}

func names(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func createSecret(t *testing.T, ns, name string, data map[string][]byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatalf("creating secret %s: %v", name, err)
	}
}

// waitEvent waits for an event with reason about the named Bucket.
func waitEvent(t *testing.T, ns, name, reason string) corev1.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list corev1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err == nil {
			for _, e := range list.Items {
				if e.InvolvedObject.Name == name && e.InvolvedObject.Kind == sourcev1.BucketKind && e.Reason == reason {
					return e
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s/%s", reason, ns, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
