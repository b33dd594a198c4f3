package bucket_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

// newBlob starts a Blob storage endpoint with one container holding
// blobs, and a Secret in ns with its account key, named "azure-key".
func newBlob(t *testing.T, ns, container string, blobs map[string]string) *testenv.BlobServer {
	t.Helper()
	blob := testenv.NewBlobServer(t, "weirtest")
	blob.CreateContainer(t, container)
	blob.PutBlobs(t, container, blobs)
	createSecret(t, ns, "azure-key", map[string][]byte{"accountKey": []byte(blob.AccountKey)})
	return blob
}

// newBlobBucket creates a Bucket with provider "azure" for a container of
// blob, with the account key of Secret "azure-key".
func newBlobBucket(t *testing.T, ns, name string, blob *testenv.BlobServer, container string, mutate func(*sourcev1.Bucket)) *sourcev1.Bucket {
	t.Helper()
	obj := &sourcev1.Bucket{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.BucketSpec{
			Provider:   sourcev1.BucketProviderAzure,
			BucketName: container,
			Endpoint:   blob.URL,
			SecretRef:  &meta.LocalObjectReference{Name: "azure-key"},
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

// azureRevision is source-controller's revision of a container: its
// index holds the hex of each blob's ETag.
func azureRevision(etags map[string]string) string {
	hexed := map[string]string{}
	for k, v := range etags {
		hexed[k] = fmt.Sprintf("%x", v)
	}
	return fluxRevision(hexed)
}

func TestAnAzureContainerIsStoredWithTheAccountKey(t *testing.T) {
	ns := env.Namespace(t)
	blobs := map[string]string{
		"apps/a.yaml":   "a: 1\n",
		"apps/b.yaml":   "b: 2\n",
		"deep/x/y/z.md": "z",
	}
	blob := newBlob(t, ns, "manifests", blobs)
	obj := newBlobBucket(t, ns, "manifests", blob, "manifests", nil)

	want := azureRevision(blob.ETags(t, "manifests", ""))
	got := waitReady(t, obj, want)
	if files := artifactFiles(t, got.Status.Artifact); !reflect.DeepEqual(files, blobs) {
		t.Errorf("artifact holds %v, want %v", names(files), names(blobs))
	}
	if ev := waitEvent(t, ns, "manifests", "NewArtifact"); ev.Message != "stored artifact with 3 fetched files from 'manifests' bucket" {
		t.Errorf("NewArtifact event %q", ev.Message)
	}

	// A blob changed and one removed: a new revision, and the artifact
	// follows.
	blob.PutBlobs(t, "manifests", map[string]string{"apps/a.yaml": "a: 10\n"})
	blob.RemoveBlobs(t, "manifests", "deep/x/y/z.md")
	got = reconcileNow(t, obj)
	if rev := azureRevision(blob.ETags(t, "manifests", "")); got.Status.Artifact.Revision != rev || rev == want {
		t.Fatalf("revision %s after a change, want %s", got.Status.Artifact.Revision, rev)
	}
	if files := artifactFiles(t, got.Status.Artifact); !reflect.DeepEqual(files, map[string]string{"apps/a.yaml": "a: 10\n", "apps/b.yaml": "b: 2\n"}) {
		t.Errorf("artifact holds %v", files)
	}
}

func TestAKustomizationAppliesFromAnAzureContainerAndPrunesRemovedBlobs(t *testing.T) {
	ns := env.Namespace(t)
	blob := newBlob(t, ns, "cluster", map[string]string{
		"apps/one.yaml": configMap("one", "1"),
		"apps/two.yaml": configMap("two", "2"),
	})
	src := newBlobBucket(t, ns, "cluster", blob, "cluster", nil)
	first := azureRevision(blob.ETags(t, "cluster", ""))
	waitReady(t, src, first)
	ks := newKustomizationOf(t, ns, "Bucket", "cluster")
	waitApplied(t, ks, first)
	waitConfigMap(t, ns, "two", "2")

	blob.RemoveBlobs(t, "cluster", "apps/two.yaml")
	second := azureRevision(blob.ETags(t, "cluster", ""))
	requestReconcile(t, src)
	waitApplied(t, ks, second)
	waitPruned(t, ns, "two")
}

func TestSASTokensReadTheContainer(t *testing.T) {
	ns := env.Namespace(t)
	blob := newBlob(t, ns, "bkt", map[string]string{"apps/a.yaml": "a", "b.yaml": "b"})
	cred, err := azblob.NewSharedKeyCredential(blob.Account, blob.AccountKey)
	if err != nil {
		t.Fatal(err)
	}
	expiry := time.Now().UTC().Add(time.Hour)
	account, err := sas.AccountSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    expiry,
		Permissions:   (&sas.AccountPermissions{Read: true, List: true}).String(),
		ResourceTypes: (&sas.AccountResourceTypes{Container: true, Object: true}).String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	container, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    expiry,
		ContainerName: "bkt",
		Permissions:   (&sas.ContainerPermissions{Read: true, List: true}).String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	readOnly, err := sas.AccountSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    expiry,
		Permissions:   (&sas.AccountPermissions{Read: true}).String(),
		ResourceTypes: (&sas.AccountResourceTypes{Container: true, Object: true}).String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	want := azureRevision(blob.ETags(t, "bkt", ""))

	for _, tc := range []struct {
		name string
		sas  sas.QueryParameters
	}{{"account-sas", account}, {"container-sas", container}} {
		t.Run(tc.name, func(t *testing.T) {
			// The leading '?' is optional, as in Flux.
			createSecret(t, ns, tc.name, map[string][]byte{"sasKey": []byte("?" + tc.sas.Encode())})
			got := waitReady(t, newBlobBucket(t, ns, tc.name, blob, "bkt", func(b *sourcev1.Bucket) { b.Spec.SecretRef.Name = tc.name }), want)
			if files := artifactFiles(t, got.Status.Artifact); !reflect.DeepEqual(names(files), []string{"apps/a.yaml", "b.yaml"}) {
				t.Errorf("artifact holds %v", names(files))
			}
		})
	}

	t.Run("without-list-permission", func(t *testing.T) {
		createSecret(t, ns, "read-only", map[string][]byte{"sasKey": []byte(readOnly.Encode())})
		got := waitNotReady(t, newBlobBucket(t, ns, "read-only", blob, "bkt", func(b *sourcev1.Bucket) { b.Spec.SecretRef.Name = "read-only" }))
		msg := conditions.GetMessage(got, meta.ReadyCondition)
		for _, want := range []string{"failed to confirm existence of 'bkt' bucket", "403 AuthorizationPermissionMismatch",
			"the SAS token of secret 'read-only' is not allowed to list and read the container"} {
			if !strings.Contains(msg, want) {
				t.Errorf("Ready message %q does not say %q", msg, want)
			}
		}
		checkNotLeaked(t, ns, readOnly.Signature(), got.Status)
	})
}

func TestAWrongAccountKeyIsRefusedAndFixingItRecovers(t *testing.T) {
	ns := env.Namespace(t)
	blob := newBlob(t, ns, "bkt", map[string]string{"a.yaml": "a"})
	wrong := make([]byte, 64)
	if _, err := rand.Read(wrong); err != nil {
		t.Fatal(err)
	}
	wrongKey := base64.StdEncoding.EncodeToString(wrong)
	createSecret(t, ns, "wrong", map[string][]byte{"accountKey": []byte(wrongKey)})
	obj := newBlobBucket(t, ns, "b", blob, "bkt", func(b *sourcev1.Bucket) { b.Spec.SecretRef.Name = "wrong" })

	got := waitNotReady(t, obj)
	ready := conditions.Get(got, meta.ReadyCondition)
	t.Logf("Ready: %s", ready.Message)
	for _, want := range []string{
		"failed to confirm existence of 'bkt' bucket: the specified bucket name may be incorrect, nonexistent, or the caller might lack sufficient permissions to access it",
		"403 AuthenticationFailed: Server failed to authenticate the request",
		"(the account key of secret 'wrong' was refused: check its 'accountKey')"} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("Ready message %q does not say %q", ready.Message, want)
		}
	}
	if strings.Contains(ready.Message, "\n") {
		t.Errorf("Ready message spans lines: %q", ready.Message)
	}
	if ready.Reason != sourcev1.BucketOperationFailedReason || conditions.IsStalled(got) {
		t.Errorf("want reason BucketOperationFailed, retried: %s", describe(got))
	}
	checkNotLeaked(t, ns, wrongKey, got.Status)

	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "wrong"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data["accountKey"] = []byte(blob.AccountKey)
	if err := env.Client.Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, obj)
	waitReady(t, obj, azureRevision(blob.ETags(t, "bkt", "")))
}

func TestAzureSecretsAndContainersThatCannotWork(t *testing.T) {
	ns := env.Namespace(t)
	blob := newBlob(t, ns, "bkt", map[string]string{"a.yaml": "a"})
	createSecret(t, ns, "no-keys", map[string][]byte{"accesskey": []byte("x")})
	createSecret(t, ns, "managed", map[string][]byte{"clientId": []byte("00000000-0000-0000-0000-000000000000")})
	for _, tc := range []struct {
		name    string
		mutate  func(*sourcev1.Bucket)
		reason  string
		want    string
		stalled bool
	}{
		{"missing-container", func(b *sourcev1.Bucket) { b.Spec.BucketName = "nope" },
			sourcev1.BucketOperationFailedReason, "bucket 'nope' not found", false},
		{"anonymous", func(b *sourcev1.Bucket) { b.Spec.SecretRef = nil },
			sourcev1.BucketOperationFailedReason, "404 ResourceNotFound: The specified resource does not exist. (anonymous access was refused: give spec.secretRef", false},
		{"no-keys", func(b *sourcev1.Bucket) { b.Spec.SecretRef.Name = "no-keys" },
			sourcev1.AuthenticationFailedReason, "invalid 'no-keys' secret data: requires a 'clientId' or 'accountKey' field, a combination of 'tenantId', 'clientId' and 'clientSecret', or 'tenantId', 'clientId' and 'clientCertificate'", false},
		{"managed-identity", func(b *sourcev1.Bucket) { b.Spec.SecretRef.Name = "managed" },
			sourcev1.InvalidProviderConfigurationReason, "a managed identity (secret 'managed' with 'clientId' and no 'tenantId' and 'clientSecret') is not supported by weir yet", true},
		{"account-not-in-host", func(b *sourcev1.Bucket) { b.Spec.Endpoint = strings.TrimSuffix(b.Spec.Endpoint, "/weirtest") },
			sourcev1.AuthenticationFailedReason, "failed to create shared credential from 'azure-key' Secret data: failed to extract account name from endpoint", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := waitNotReady(t, newBlobBucket(t, ns, tc.name, blob, "bkt", tc.mutate))
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready.Reason != tc.reason || !strings.Contains(ready.Message, tc.want) || conditions.IsStalled(got) != tc.stalled {
				t.Errorf("want reason %s, stalled %v, message with %q: %s", tc.reason, tc.stalled, tc.want, describe(got))
			}
		})
	}
}
