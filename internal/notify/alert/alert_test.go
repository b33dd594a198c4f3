package alert_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// endpoint stands in for a provider's service: it records every request
// and answers with the next status of its script (200 once it runs out).
type endpoint struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
	script   []int
}

type request struct {
	method, path string
	escaped      string // the path as sent, with its escapes
	header       http.Header
	body         []byte
}

func newEndpoint(t *testing.T, script ...int) *endpoint {
	e := &endpoint{script: script}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.requests = append(e.requests, request{method: r.Method, path: r.URL.Path, escaped: r.URL.EscapedPath(), header: r.Header.Clone(), body: b})
		code := http.StatusOK
		if len(e.script) > 0 {
			code, e.script = e.script[0], e.script[1:]
		}
		e.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) got() []request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]request(nil), e.requests...)
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}
}

func provider(ns, name, typ, address, secret string) *notificationv1beta3.Provider {
	p := &notificationv1beta3.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: notificationv1beta3.ProviderSpec{Type: typ, Address: address, Channel: "flux"}}
	if secret != "" {
		p.Spec.SecretRef = &meta.LocalObjectReference{Name: secret}
	}
	return p
}

func alertFor(ns, name, providerName, severity string, mutate func(*notificationv1beta3.Alert)) *notificationv1beta3.Alert {
	a := &notificationv1beta3.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: notificationv1beta3.AlertSpec{
			ProviderRef:   meta.LocalObjectReference{Name: providerName},
			EventSeverity: severity,
			EventSources:  []notificationv1.CrossNamespaceObjectReference{{Kind: sourcev1.GitRepositoryKind, Name: "*"}},
		}}
	if mutate != nil {
		mutate(a)
	}
	return a
}

func gitRepository(t *testing.T, ns, name string) {
	git := testenv.NewGitServer(t, "", "")
	r := git.Repo(t, name)
	r.Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	create(t, &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.GitRepositorySpec{URL: git.HTTPURL(name), Interval: metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}}})
}

// A source's NewArtifact event reaches a generic-hmac, a Slack, a Discord
// and an Alertmanager endpoint, each in the shape its service expects,
// with the address and token taken from Secrets.
func TestEventsReachEachProvider(t *testing.T) {
	ns := env.Namespace(t)
	hmacEP, slackEP, discordEP, amEP := newEndpoint(t), newEndpoint(t), newEndpoint(t), newEndpoint(t)
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hmac"}, StringData: map[string]string{
			"address": hmacEP.URL, "token": "hmac-t0ken", "headers": "X-Team: platform\n"}},
		provider(ns, "hmac", notificationv1beta3.GenericHMACProvider, "", "hmac"),
		provider(ns, "slack", notificationv1beta3.SlackProvider, slackEP.URL, ""),
		provider(ns, "discord", notificationv1beta3.DiscordProvider, discordEP.URL, ""),
		provider(ns, "am", notificationv1beta3.AlertManagerProvider, amEP.URL, ""),
	)
	for _, p := range []string{"hmac", "slack", "discord", "am"} {
		create(t, alertFor(ns, p, p, "info", func(a *notificationv1beta3.Alert) {
			a.Spec.EventMetadata = map[string]string{"cluster": "home"}
		}))
	}
	gitRepository(t, ns, "podinfo")

	testenv.WaitFor(t, 30*time.Second, func() string {
		for name, ep := range map[string]*endpoint{"generic-hmac": hmacEP, "slack": slackEP, "discord": discordEP, "alertmanager": amEP} {
			if len(ep.got()) == 0 {
				return name + " received nothing"
			}
		}
		return ""
	})
	// generic-hmac: Flux's event, signed.
	r := hmacEP.got()[0]
	m := hmac.New(sha256.New, []byte("hmac-t0ken"))
	m.Write(r.body)
	if r.header.Get("X-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) || r.header.Get("X-Team") != "platform" {
		t.Errorf("generic-hmac headers %v: want the body's HMAC and the Secret's headers", r.header)
	}
	var ev struct {
		InvolvedObject                                 struct{ Kind, Name, Namespace string } `json:"involvedObject"`
		Severity, Reason, Message, ReportingController string
		Metadata                                       map[string]string
	}
	if err := json.Unmarshal(r.body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.InvolvedObject.Kind != "GitRepository" || ev.InvolvedObject.Name != "podinfo" || ev.Severity != "info" ||
		ev.ReportingController != "source-controller" || ev.Metadata["cluster"] != "home" || !strings.HasPrefix(ev.Metadata["revision"], "main@sha1:") {
		t.Errorf("generic event %+v", ev)
	}
	// Slack: an attachment per event; Discord: the same at /slack.
	var slack struct {
		Channel     string
		Attachments []struct {
			Color, Text string
			AuthorName  string `json:"author_name"`
		}
	}
	if err := json.Unmarshal(slackEP.got()[0].body, &slack); err != nil {
		t.Fatal(err)
	}
	if slack.Channel != "flux" || len(slack.Attachments) != 1 || slack.Attachments[0].Color != "good" ||
		slack.Attachments[0].AuthorName != "gitrepository/podinfo."+ns {
		t.Errorf("slack payload %+v", slack)
	}
	// Alertmanager: a list of alerts with labels.
	var am []struct {
		Labels      map[string]string
		Annotations map[string]string
	}
	if err := json.Unmarshal(amEP.got()[0].body, &am); err != nil {
		t.Fatal(err)
	}
	if len(am) != 1 || am[0].Labels["alertname"] != "FluxGitRepository"+ev.Reason || am[0].Labels["name"] != "podinfo" || am[0].Annotations["message"] == "" {
		t.Errorf("alertmanager payload %+v", am)
	}
}

// An error-only Alert ignores info events; an exclusion list drops what it
// matches; a 5xx is retried until it succeeds; a 4xx is not retried.
func TestFilteringAndRetries(t *testing.T) {
	ns := env.Namespace(t)
	errorsOnly, excluded := newEndpoint(t), newEndpoint(t)
	flaky := newEndpoint(t, http.StatusServiceUnavailable, http.StatusBadGateway)
	refusing := newEndpoint(t, http.StatusBadRequest, http.StatusBadRequest, http.StatusBadRequest)
	create(t,
		provider(ns, "errors-only", notificationv1beta3.GenericProvider, errorsOnly.URL, ""),
		provider(ns, "excluded", notificationv1beta3.GenericProvider, excluded.URL, ""),
		provider(ns, "flaky", notificationv1beta3.GenericProvider, flaky.URL, ""),
		provider(ns, "refusing", notificationv1beta3.GenericProvider, refusing.URL, ""),
		alertFor(ns, "errors-only", "errors-only", "error", nil),
		alertFor(ns, "excluded", "excluded", "info", func(a *notificationv1beta3.Alert) { a.Spec.ExclusionList = []string{"stored artifact"} }),
		alertFor(ns, "flaky", "flaky", "info", nil),
		alertFor(ns, "refusing", "refusing", "info", nil),
	)
	gitRepository(t, ns, "podinfo")
	testenv.WaitFor(t, 30*time.Second, func() string {
		if n := len(flaky.got()); n < 3 {
			return "the flaky endpoint got fewer than 3 attempts"
		}
		return ""
	})
	time.Sleep(2 * time.Second)
	if n := len(refusing.got()); n != 1 {
		t.Errorf("a 4xx endpoint got %d attempts, want 1 (no retry)", n)
	}
	if n := len(errorsOnly.got()); n != 0 {
		t.Errorf("an error-only Alert delivered %d info events", n)
	}
	for _, r := range excluded.got() {
		if strings.Contains(string(r.body), "stored artifact") {
			t.Errorf("the exclusion list let through %s", r.body)
		}
	}
}

// The other provider types, each delivered to a loopback endpoint standing
// in for its service's API, at the path and with the credentials the
// service expects.
func TestEventsReachEveryOtherProvider(t *testing.T) {
	ns := env.Namespace(t)
	eps := map[string]*endpoint{}
	for _, typ := range []string{notificationv1beta3.MSTeamsProvider, notificationv1beta3.GoogleChatProvider, notificationv1beta3.TelegramProvider,
		notificationv1beta3.Matrix, notificationv1beta3.GitHubProvider, notificationv1beta3.GitLabProvider} {
		ep := newEndpoint(t)
		eps[typ] = ep
		address := ep.URL
		if typ == notificationv1beta3.GitHubProvider || typ == notificationv1beta3.GitLabProvider {
			address = ep.URL + "/owner/home-ops"
		}
		p := provider(ns, typ, typ, address, typ)
		if typ == notificationv1beta3.Matrix {
			p.Spec.Channel = "!room:example.org"
		}
		create(t,
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: typ}, StringData: map[string]string{"token": typ + "-t0ken"}},
			p, alertFor(ns, typ, typ, "info", nil))
	}
	gitRepository(t, ns, "podinfo")
	testenv.WaitFor(t, 30*time.Second, func() string {
		for typ, ep := range eps {
			if len(ep.got()) == 0 {
				return typ + " received nothing"
			}
		}
		return ""
	})
	checks := map[string]func(r request) string{
		notificationv1beta3.MSTeamsProvider: func(r request) string {
			if !strings.Contains(string(r.body), "application/vnd.microsoft.card.adaptive") {
				return "not an Adaptive Card"
			}
			return ""
		},
		notificationv1beta3.GoogleChatProvider: func(r request) string {
			if !strings.Contains(string(r.body), `"cards"`) {
				return "no cards"
			}
			return ""
		},
		notificationv1beta3.TelegramProvider: func(r request) string {
			if r.path != "/bottelegram-t0ken/sendMessage" {
				return "path " + r.path
			}
			return ""
		},
		notificationv1beta3.Matrix: func(r request) string {
			if r.method != http.MethodPut || !strings.HasPrefix(r.path, "/_matrix/client/r0/rooms/!room:example.org/send/m.room.message/") ||
				r.header.Get("Authorization") != "Bearer matrix-t0ken" {
				return r.method + " " + r.path
			}
			return ""
		},
		notificationv1beta3.GitHubProvider: func(r request) string {
			if !strings.HasPrefix(r.path, "/api/v3/repos/owner/home-ops/statuses/") || r.header.Get("Authorization") != "Bearer github-t0ken" ||
				!strings.Contains(string(r.body), `"state":"success"`) {
				return r.path + " " + string(r.body)
			}
			return ""
		},
		notificationv1beta3.GitLabProvider: func(r request) string {
			if !strings.HasPrefix(r.escaped, "/api/v4/projects/owner%2Fhome-ops/statuses/") || r.header.Get("PRIVATE-TOKEN") != "gitlab-t0ken" {
				return r.escaped
			}
			return ""
		},
	}
	for typ, check := range checks {
		if msg := check(eps[typ].got()[0]); msg != "" {
			t.Errorf("%s: %s", typ, msg)
		}
	}
}

// A Provider reaches a service with its own certificate authority through
// certSecretRef, and a service behind a proxy through proxySecretRef; the
// same service without the authority is refused and the Alert says why.
func TestProviderCertificateAndProxy(t *testing.T) {
	ns := env.Namespace(t)
	var mu sync.Mutex
	var tlsBodies [][]byte
	tlsEP := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		tlsBodies = append(tlsBodies, b)
		mu.Unlock()
	}))
	t.Cleanup(tlsEP.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsEP.Certificate().Raw})

	// The proxy answers for the service: a request it receives names the
	// service's absolute URL, which only a request sent through a proxy does.
	target := newEndpoint(t)
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.IsAbs() && r.URL.Host == strings.TrimPrefix(target.URL, "http://") &&
			r.Header.Get("Proxy-Authorization") == "Basic "+base64.StdEncoding.EncodeToString([]byte("squid:s3cret")) {
			proxied.Add(1)
		}
		httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: r.URL.Host}).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	trusted := provider(ns, "trusted", notificationv1beta3.GenericProvider, tlsEP.URL, "")
	trusted.Spec.CertSecretRef = &meta.LocalObjectReference{Name: "internal-ca"}
	proxiedProvider := provider(ns, "proxied", notificationv1beta3.GenericProvider, target.URL, "")
	proxiedProvider.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: "proxy"}
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "internal-ca"}, Data: map[string][]byte{"ca.crt": ca}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "proxy"}, StringData: map[string]string{
			"address": proxy.URL, "username": "squid", "password": "s3cret"}},
		trusted, proxiedProvider,
		provider(ns, "untrusted", notificationv1beta3.GenericProvider, tlsEP.URL, ""),
		alertFor(ns, "trusted", "trusted", "info", nil),
		alertFor(ns, "proxied", "proxied", "info", nil),
		alertFor(ns, "untrusted", "untrusted", "info", nil),
	)
	gitRepository(t, ns, "podinfo")
	testenv.WaitFor(t, 30*time.Second, func() string {
		mu.Lock()
		n := len(tlsBodies)
		mu.Unlock()
		switch {
		case n == 0:
			return "the service with its own authority received nothing"
		case proxied.Load() == 0:
			return "nothing went through the proxy"
		}
		return ""
	})
	testenv.WaitFor(t, 30*time.Second, func() string {
		events := &corev1.EventList{}
		if err := env.Client.List(context.Background(), events, client.InNamespace(ns)); err != nil {
			return err.Error()
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Name == "untrusted" && e.Reason == "DeliveryFailed" {
				if !strings.Contains(e.Message, "certificate") || strings.Contains(e.Message, tlsEP.URL) {
					return "DeliveryFailed says " + e.Message + "; want the certificate named and the address left out"
				}
				return ""
			}
		}
		return "no DeliveryFailed event on the Alert whose Provider does not trust the service"
	})
}
