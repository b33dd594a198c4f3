package receiver_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // GitHub's legacy signature.
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/notify/receiver"
	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const token = "s3cret-webhook-t0ken"

// fixture is a namespace with a token Secret, a GitRepository fetched
// from a loopback Git server, and a Receiver of type typ listing it.
type fixture struct {
	ns   string
	repo *sourcev1.GitRepository
	rcv  *notificationv1.Receiver
	url  string
}

func newFixture(t *testing.T, typ string, events []string, mutate func(*notificationv1.Receiver)) *fixture {
	t.Helper()
	ctx := context.Background()
	ns := env.Namespace(t)
	git := testenv.NewGitServer(t, "", "")
	r := git.Repo(t, "home-ops")
	r.Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "home-ops"},
		Spec: sourcev1.GitRepositorySpec{URL: git.HTTPURL("home-ops"), Interval: metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "receiver-token"}, StringData: map[string]string{"token": token}}
	rcv := &notificationv1.Receiver{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "github"},
		Spec: notificationv1.ReceiverSpec{
			Type: typ, Events: events,
			SecretRef: &meta.LocalObjectReference{Name: "receiver-token"},
			Resources: []notificationv1.ReceiverResource{{CrossNamespaceObjectReference: notificationv1.CrossNamespaceObjectReference{
				Kind: sourcev1.GitRepositoryKind, Name: "home-ops"}}},
		},
	}
	if mutate != nil {
		mutate(rcv)
	}
	for _, o := range []client.Object{repo, secret, rcv} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{ns: ns, repo: repo, rcv: rcv}
	testenv.WaitFor(t, 30*time.Second, func() string {
		got := &notificationv1.Receiver{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(rcv), got); err != nil {
			return err.Error()
		}
		if !conditions.IsReady(got) || got.Status.WebhookPath == "" {
			return "Receiver not Ready: " + conditions.GetMessage(got, meta.ReadyCondition)
		}
		f.url = env.Manager.ReceiverURL + got.Status.WebhookPath
		return ""
	})
	testenv.WaitFor(t, 30*time.Second, func() string {
		if !conditions.IsReady(f.get(t)) {
			return "GitRepository not Ready"
		}
		return ""
	})
	return f
}

func (f *fixture) get(t *testing.T) *sourcev1.GitRepository {
	t.Helper()
	got := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(f.repo), got); err != nil {
		t.Fatal(err)
	}
	return got
}

// post sends body with headers and returns the status code.
func post(t *testing.T, url string, body []byte, headers map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func sign256(body []byte) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// GitHub's push and ping, signed as GitHub signs them: a good signature
// reconciles the listed GitRepository; a bad or missing one gets 401 and
// nothing; ping is answered; an event not in spec.events is ignored; an
// unknown path is 404 and an oversized body 413.
func TestGitHubWebhook(t *testing.T) {
	f := newFixture(t, notificationv1.GitHubReceiver, []string{"push"}, nil)
	push := readFile(t, "testdata/github-push.json")
	ping := readFile(t, "testdata/github-ping.json")
	requested := func() string { return f.get(t).Annotations[meta.ReconcileRequestAnnotation] }

	if code := post(t, f.url, push, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + strings.Repeat("0", 64)}); code != http.StatusUnauthorized {
		t.Errorf("a bad signature got %d, want 401", code)
	}
	if code := post(t, f.url, push, map[string]string{"X-GitHub-Event": "push"}); code != http.StatusUnauthorized {
		t.Errorf("no signature got %d, want 401", code)
	}
	m := hmac.New(sha1.New, []byte(token))
	m.Write(push)
	if code := post(t, f.url, push, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=" + hex.EncodeToString(m.Sum(nil))}); code != http.StatusUnauthorized {
		t.Errorf("a SHA-1 signature alone got %d, want 401 (refused unless allowed)", code)
	}
	if code := post(t, f.url, ping, map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": sign256(ping)}); code != http.StatusOK {
		t.Errorf("ping got %d, want 200", code)
	}
	if code := post(t, f.url, push, map[string]string{"X-GitHub-Event": "issues", "X-Hub-Signature-256": sign256(push)}); code != http.StatusOK {
		t.Errorf("an event not in spec.events got %d, want 200", code)
	}
	if got := requested(); got != "" {
		t.Fatalf("a refused, ping or filtered request asked for a reconcile (%q)", got)
	}
	if code := post(t, env.Manager.ReceiverURL+"/hook/"+strings.Repeat("ab", 32), push, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign256(push)}); code != http.StatusNotFound {
		t.Errorf("an unknown path got %d, want 404", code)
	}
	big := bytes.Repeat([]byte("x"), receiver.MaxBodySize+1)
	if code := post(t, f.url, big, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign256(big)}); code != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized body got %d, want 413", code)
	}

	start := time.Now()
	if code := post(t, f.url, push, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign256(push)}); code != http.StatusOK {
		t.Fatalf("a signed push got %d, want 200", code)
	}
	testenv.WaitFor(t, 30*time.Second, func() string {
		got := f.get(t)
		at := got.Annotations[meta.ReconcileRequestAnnotation]
		if at == "" || got.Status.LastHandledReconcileAt != at {
			return "the push did not reconcile the GitRepository"
		}
		return ""
	})
	t.Logf("push to reconciled GitRepository: %s", time.Since(start).Round(time.Millisecond))
}

// A github Receiver annotated to allow SHA-1 accepts GitHub's legacy
// signature.
func TestGitHubSHA1WhenAllowed(t *testing.T) {
	f := newFixture(t, notificationv1.GitHubReceiver, nil, func(r *notificationv1.Receiver) {
		r.Annotations = map[string]string{receiver.AllowSHA1Annotation: "true"}
	})
	push := readFile(t, "testdata/github-push.json")
	m := hmac.New(sha1.New, []byte(token))
	m.Write(push)
	if code := post(t, f.url, push, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=" + hex.EncodeToString(m.Sum(nil))}); code != http.StatusOK {
		t.Errorf("an allowed SHA-1 signature got %d, want 200", code)
	}
}

// The Receiver's status: the path Flux computes, Flux's Ready message; a
// missing token Secret is TokenNotFound.
func TestReceiverStatus(t *testing.T) {
	f := newFixture(t, notificationv1.GenericReceiver, nil, nil)
	got := &notificationv1.Receiver{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(f.rcv), got); err != nil {
		t.Fatal(err)
	}
	want := receiver.WebhookPath(token, f.rcv.Name, f.ns)
	sum := sha256.Sum256([]byte(token + f.rcv.Name + f.ns))
	if got.Status.WebhookPath != want || want != "/hook/"+hex.EncodeToString(sum[:]) {
		t.Errorf("webhookPath %q, want %q", got.Status.WebhookPath, want)
	}
	if msg := conditions.GetMessage(got, meta.ReadyCondition); msg != "Receiver initialized for path: "+want {
		t.Errorf("Ready message %q", msg)
	}
	bad := &notificationv1.Receiver{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "no-secret"},
		Spec: notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, SecretRef: &meta.LocalObjectReference{Name: "missing"},
			Resources: f.rcv.Spec.Resources},
	}
	if err := env.Client.Create(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, func() string {
		got := &notificationv1.Receiver{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(bad), got); err != nil {
			return err.Error()
		}
		if conditions.GetReason(got, meta.ReadyCondition) != notificationv1.TokenNotFoundReason {
			return "reason " + conditions.GetReason(got, meta.ReadyCondition)
		}
		return ""
	})
}

// A resource named "*" with matchLabels reaches every object of the kind
// with those labels, and only those; a generic receiver needs no signature.
func TestWildcardResources(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, notificationv1.GenericReceiver, nil, func(r *notificationv1.Receiver) {
		r.Spec.Resources = append(r.Spec.Resources, notificationv1.ReceiverResource{CrossNamespaceObjectReference: notificationv1.CrossNamespaceObjectReference{
			Kind: kustomizev1.KustomizationKind, Name: "*", MatchLabels: map[string]string{"team": "apps"}}})
	})
	for _, name := range []string{"a", "b", "other"} {
		ks := &kustomizev1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name, Labels: map[string]string{"team": "apps"}},
			Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Hour}, Path: "./", Suspend: true,
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "home-ops"}},
		}
		if name == "other" {
			ks.Labels = map[string]string{"team": "infra"}
		}
		if err := env.Client.Create(ctx, ks); err != nil {
			t.Fatal(err)
		}
	}
	if code := post(t, f.url, []byte(`{"any":"thing"}`), nil); code != http.StatusOK {
		t.Fatalf("generic webhook got %d", code)
	}
	for name, want := range map[string]bool{"a": true, "b": true, "other": false} {
		ks := &kustomizev1.Kustomization{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, ks); err != nil {
			t.Fatal(err)
		}
		if got := ks.Annotations[meta.ReconcileRequestAnnotation] != ""; got != want {
			t.Errorf("Kustomization %s annotated %v, want %v", name, got, want)
		}
	}
	if f.get(t).Annotations[meta.ReconcileRequestAnnotation] == "" {
		t.Error("the GitRepository listed by name was not annotated")
	}
}

// Requests beyond a receiver's rate get 429.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, notificationv1.GitLabReceiver, nil, nil)
	limited := 0
	for range 40 {
		if post(t, f.url, []byte(`{"object_kind":"push"}`), map[string]string{"X-Gitlab-Token": token, "X-Gitlab-Event": "Push Hook"}) == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("40 requests at once were all accepted, want some 429")
	}
}

// The request `weir trigger receiver` sends is accepted by the receiver,
// for each sender it can imitate, and reconciles the listed resource.
func TestTriggerRequestIsAccepted(t *testing.T) {
	cases := []struct {
		typ    string
		events []string
	}{
		{notificationv1.GitHubReceiver, []string{"push"}},
		{notificationv1.GitLabReceiver, []string{"Push Hook"}},
		{notificationv1.BitbucketReceiver, nil},
		{notificationv1.GenericHMACReceiver, nil},
		{notificationv1.HarborReceiver, nil},
		{notificationv1.NexusReceiver, nil},
		{notificationv1.QuayReceiver, nil},
		{notificationv1.CDEventsReceiver, []string{"dev.cdevents.change.merged.0.1.2"}},
	}
	for _, c := range cases {
		t.Run(c.typ, func(t *testing.T) {
			f := newFixture(t, c.typ, c.events, nil)
			got := &notificationv1.Receiver{}
			if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(f.rcv), got); err != nil {
				t.Fatal(err)
			}
			req, err := receiver.TestRequest(got, token, env.Manager.ReceiverURL)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "reconcile requested for 1 resources") {
				t.Fatalf("answered %d %q", resp.StatusCode, b)
			}
			if f.get(t).Annotations[meta.ReconcileRequestAnnotation] == "" {
				t.Error("the GitRepository was not annotated")
			}
		})
	}
}
