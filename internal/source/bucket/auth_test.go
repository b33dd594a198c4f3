package bucket_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestWrongCredentialsAreReportedAndFixingThemRecovers(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", map[string]string{"a.yaml": "a"})
	const wrong = "not-the-secret-key-4f2a9c"
	createSecret(t, ns, "wrong", map[string][]byte{"accesskey": []byte(accessKey), "secretkey": []byte(wrong)})
	obj := newBucket(t, ns, "b", s3, "bkt", func(b *sourcev1.Bucket) { b.Spec.SecretRef.Name = "wrong" })

	got := waitNotReady(t, obj)
	ready := conditions.Get(got, meta.ReadyCondition)
	for _, want := range []string{"failed to confirm existence of 'bkt' bucket", "signature we calculated does not match",
		"the credentials of secret 'wrong' were refused"} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("Ready message %q does not say %q", ready.Message, want)
		}
	}
	if ready.Reason != sourcev1.BucketOperationFailedReason || !conditions.IsTrue(got, sourcev1.FetchFailedCondition) || conditions.IsStalled(got) {
		t.Errorf("want FetchFailed, reason BucketOperationFailed, retried: %s", describe(got))
	}
	waitEvent(t, ns, "b", sourcev1.BucketOperationFailedReason)
	checkNotLeaked(t, ns, wrong, got.Status)

	// The right key in the Secret, and the next reconcile succeeds.
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "wrong"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data["secretkey"] = []byte(secretKey)
	if err := env.Client.Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, obj)
	waitReady(t, obj, fluxRevision(s3.ETags(t, "bkt", "")))
}

func TestAnUnknownAccessKeyIsReported(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", map[string]string{"a.yaml": "a"})
	createSecret(t, ns, "other", map[string][]byte{"accesskey": []byte("someone-else"), "secretkey": []byte(secretKey)})
	got := waitNotReady(t, newBucket(t, ns, "b", s3, "bkt", func(b *sourcev1.Bucket) { b.Spec.SecretRef.Name = "other" }))
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "Access Key Id you provided does not exist") ||
		!strings.Contains(msg, "secret 'other' were refused") {
		t.Errorf("Ready message %q", msg)
	}
}

func TestAnonymousAccessRefusedSaysToSetASecret(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", map[string]string{"a.yaml": "a"})
	got := waitNotReady(t, newBucket(t, ns, "b", s3, "bkt", func(b *sourcev1.Bucket) { b.Spec.SecretRef = nil }))
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "anonymous access was refused: give spec.secretRef") {
		t.Errorf("Ready message %q", msg)
	}
}

func TestASecretWithoutKeysIsAnAuthenticationFailure(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", map[string]string{"a.yaml": "a"})
	createSecret(t, ns, "empty", map[string][]byte{"username": []byte("x")})
	got := waitNotReady(t, newBucket(t, ns, "b", s3, "bkt", func(b *sourcev1.Bucket) { b.Spec.SecretRef.Name = "empty" }))
	ready := conditions.Get(got, meta.ReadyCondition)
	if ready.Reason != sourcev1.AuthenticationFailedReason || ready.Message != "invalid 'empty' secret data: required fields 'accesskey' and 'secretkey'" {
		t.Errorf("Ready %s %q", ready.Reason, ready.Message)
	}
}

func TestAMissingBucketIsReported(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", nil)
	got := waitNotReady(t, newBucket(t, ns, "nope", s3, "nope", nil))
	if msg := conditions.GetMessage(got, meta.ReadyCondition); msg != "bucket 'nope' not found" {
		t.Errorf("Ready message %q", msg)
	}
}

func TestProviderAWSSignsWithTheSecretsKeys(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", map[string]string{"a.yaml": "a"})
	obj := newBucket(t, ns, "b", s3, "bkt", func(b *sourcev1.Bucket) {
		b.Spec.Provider = sourcev1.BucketProviderAmazon
		b.Spec.Region = "us-east-1"
	})
	waitReady(t, obj, fluxRevision(s3.ETags(t, "bkt", "")))
}

func TestWhatWeirDoesNotSupportStalls(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*sourcev1.Bucket)
		reason string
		want   string
	}{
		{"gcp-identity", func(b *sourcev1.Bucket) { b.Spec.Provider = sourcev1.BucketProviderGoogle; b.Spec.SecretRef = nil },
			sourcev1.InvalidProviderConfigurationReason, "provider 'gcp' without spec.secretRef (workload identity of the controller's own cloud identity) is not supported by weir yet"},
		{"azure-identity", func(b *sourcev1.Bucket) {
			b.Spec.Provider = sourcev1.BucketProviderAzure
			b.Spec.SecretRef = nil
			b.Spec.ServiceAccountName = "blob-reader"
		}, sourcev1.InvalidProviderConfigurationReason, "provider 'azure' with spec.serviceAccountName (workload identity) is not supported by weir yet"},
		{"aws-identity", func(b *sourcev1.Bucket) { b.Spec.Provider = sourcev1.BucketProviderAmazon; b.Spec.SecretRef = nil },
			sourcev1.InvalidProviderConfigurationReason, "provider 'aws' without spec.secretRef"},
		{"sts-aws", func(b *sourcev1.Bucket) {
			b.Spec.Provider = sourcev1.BucketProviderAmazon
			b.Spec.STS = &sourcev1.BucketSTSSpec{Provider: sourcev1.STSProviderAmazon, Endpoint: "https://sts.amazonaws.com"}
		}, sourcev1.InvalidSTSConfigurationReason, "STS provider 'aws' (a role assumed with the controller's cloud identity) is not supported by weir yet"},
		{"endpoint-url", func(b *sourcev1.Bucket) { b.Spec.Endpoint = "http://" + b.Spec.Endpoint },
			sourcev1.URLInvalidReason, "without a scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			s3 := newServer(t, ns, "bkt", map[string]string{"a.yaml": "a"})
			got := waitNotReady(t, newBucket(t, ns, "b", s3, "bkt", tc.mutate))
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready.Reason != tc.reason || !strings.Contains(ready.Message, tc.want) || !conditions.IsStalled(got) {
				t.Errorf("want Stalled, reason %s, message with %q: %s", tc.reason, tc.want, describe(got))
			}
		})
	}
}

// checkNotLeaked fails the test if secret is in the status, an event of
// the namespace or the controller's log.
func checkNotLeaked(t *testing.T, ns, secret string, status any) {
	t.Helper()
	js, _ := json.Marshal(status)
	if strings.Contains(string(js), secret) {
		t.Errorf("the secret is in the status: %s", js)
	}
	var events corev1.EventList
	if err := env.Client.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, ev := range events.Items {
		if strings.Contains(ev.Message, secret) {
			t.Errorf("the secret is in the event %s: %q", ev.Reason, ev.Message)
		}
	}
	if strings.Contains(env.Logs.String(), secret) {
		t.Errorf("the secret is in the log")
	}
}
