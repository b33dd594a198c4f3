// Package alert delivers the events of weir's reconcilers to the services
// Flux's Alerts name (notification.toolkit.fluxcd.io/v1beta3): each event
// on the bus is matched against every Alert (severity, event sources with
// wildcards and labels, inclusion and exclusion lists), enriched with the
// Alert's eventMetadata and summary, and posted to its Provider (generic,
// generic-hmac, slack, discord, alertmanager) with retries on 5xx and
// none on 4xx. Alerts and Providers are static, as in Flux v1beta3: a
// failure is logged and recorded as a Warning event on the Alert, never
// with the provider's address or token.
package alert

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/notify/event"
	"github.com/weirhq/weir/internal/secretconf"
)

// dedupWindow is how long an identical event to the same Alert is not
// sent again, as Flux's notification-controller rate-limits duplicates.
const dedupWindow = 5 * time.Minute

// Dispatcher delivers the bus's events to the matching Alerts' Providers.
type Dispatcher struct {
	// Client lists Alerts and Providers (cached) and annotates nothing.
	Client client.Client
	// Reader reads Secrets and the labels of event sources.
	Reader client.Reader
	// Bus is where the events come from.
	Bus *event.Bus
	// Recorder records delivery failures on the Alert (Kubernetes events
	// only: a failure to alert is not itself alerted).
	Recorder record.EventRecorder
	// NoCrossNamespaceRefs ignores event sources in other namespaces than
	// the Alert's.
	NoCrossNamespaceRefs bool
	// HTTPClient posts to the providers; nil means a default one.
	HTTPClient *http.Client
	// Log receives delivery failures, without secrets.
	Log logr.Logger

	mu   sync.Mutex
	sent map[string]time.Time
	wg   sync.WaitGroup
}

// NeedLeaderElection is true: only the leader reconciles, so only its
// events are alerted, once.
func (d *Dispatcher) NeedLeaderElection() bool { return true }

// Start delivers events until ctx ends, then waits for deliveries in
// flight.
func (d *Dispatcher) Start(ctx context.Context) error {
	events := d.Bus.Subscribe(1024)
	sem := make(chan struct{}, 4)
	defer d.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-events:
			d.dispatch(ctx, e, sem)
		}
	}
}

func (d *Dispatcher) dispatch(ctx context.Context, e event.Event, sem chan struct{}) {
	alerts := &notificationv1beta3.AlertList{}
	if err := d.Client.List(ctx, alerts); err != nil {
		d.Log.Error(err, "listing Alerts")
		return
	}
	for i := range alerts.Items {
		a := &alerts.Items[i]
		if !d.matches(ctx, a, e) {
			continue
		}
		ev := enrich(a, e)
		if d.duplicate(a, ev) {
			continue
		}
		t, err := d.target(ctx, a)
		if err != nil {
			d.fail(a, err)
			continue
		}
		sem <- struct{}{}
		d.wg.Add(1)
		go func() {
			defer func() { <-sem; d.wg.Done() }()
			hc := d.httpClient()
			if t.client != nil {
				hc = t.client
			}
			if err := send(ctx, hc, t, ev); err != nil {
				d.fail(a, fmt.Errorf("delivering the event of %s/%s/%s to Provider %s: %w",
					ev.InvolvedObject.Kind, ev.InvolvedObject.Namespace, ev.InvolvedObject.Name, a.Spec.ProviderRef.Name, err))
			}
		}()
	}
}

func (d *Dispatcher) httpClient() *http.Client {
	if d.HTTPClient != nil {
		return d.HTTPClient
	}
	return http.DefaultClient
}

func (d *Dispatcher) fail(a *notificationv1beta3.Alert, err error) {
	d.Log.Error(err, "alert not delivered", "alert", a.Namespace+"/"+a.Name)
	if d.Recorder != nil {
		d.Recorder.Event(a, corev1.EventTypeWarning, "DeliveryFailed", err.Error())
	}
}

// matches applies the Alert's suspend, severity, event sources and lists.
func (d *Dispatcher) matches(ctx context.Context, a *notificationv1beta3.Alert, e event.Event) bool {
	if a.Spec.Suspend {
		return false
	}
	if a.Spec.EventSeverity == eventv1.EventSeverityError && e.Severity != eventv1.EventSeverityError {
		return false
	}
	source := false
	for _, s := range a.Spec.EventSources {
		ns := s.Namespace
		if ns == "" {
			ns = a.Namespace
		}
		if s.Kind != e.InvolvedObject.Kind || ns != e.InvolvedObject.Namespace {
			continue
		}
		if d.NoCrossNamespaceRefs && ns != a.Namespace {
			continue
		}
		if ok, _ := path.Match(s.Name, e.InvolvedObject.Name); !ok && s.Name != e.InvolvedObject.Name {
			continue
		}
		if len(s.MatchLabels) > 0 && !d.hasLabels(ctx, e.InvolvedObject, s.MatchLabels) {
			continue
		}
		source = true
		break
	}
	if !source {
		return false
	}
	if len(a.Spec.InclusionList) > 0 && !anyMatch(a.Spec.InclusionList, e.Message) {
		return false
	}
	return !anyMatch(a.Spec.ExclusionList, e.Message)
}

// hasLabels reads the involved object's labels.
func (d *Dispatcher) hasLabels(ctx context.Context, ref corev1.ObjectReference, want map[string]string) bool {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return false
	}
	o := &metav1.PartialObjectMetadata{}
	o.SetGroupVersionKind(gv.WithKind(ref.Kind))
	if err := d.Reader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, o); err != nil {
		return false
	}
	for k, v := range want {
		if o.Labels[k] != v {
			return false
		}
	}
	return true
}

// anyMatch tells whether any of the regular expressions matches s; one
// that does not compile matches nothing.
func anyMatch(exprs []string, s string) bool {
	for _, x := range exprs {
		if re, err := regexp.Compile(x); err == nil && re.MatchString(s) {
			return true
		}
	}
	return false
}

// enrich adds the Alert's eventMetadata (the event's own keys win) and
// summary.
func enrich(a *notificationv1beta3.Alert, e event.Event) event.Event {
	if len(a.Spec.EventMetadata) == 0 && a.Spec.Summary == "" {
		return e
	}
	md := map[string]string{}
	for k, v := range a.Spec.EventMetadata {
		md[k] = v
	}
	if a.Spec.Summary != "" {
		md["summary"] = a.Spec.Summary
	}
	for k, v := range e.Metadata {
		md[k] = v
	}
	e.Metadata = md
	return e
}

// duplicate tells whether the same event went to the same Alert within
// the window, and remembers this one.
func (d *Dispatcher) duplicate(a *notificationv1beta3.Alert, e event.Event) bool {
	b, _ := json.Marshal([]any{a.Namespace, a.Name, e.InvolvedObject.Kind, e.InvolvedObject.Namespace, e.InvolvedObject.Name,
		e.Severity, e.Reason, e.Message, e.Metadata})
	sum := sha256.Sum256(b)
	key := hex.EncodeToString(sum[:])
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sent == nil {
		d.sent = map[string]time.Time{}
	}
	for k, at := range d.sent {
		if now.Sub(at) > dedupWindow {
			delete(d.sent, k)
		}
	}
	if at, ok := d.sent[key]; ok && now.Sub(at) <= dedupWindow {
		return true
	}
	d.sent[key] = now
	return false
}

// target reads the Alert's Provider and its Secret.
func (d *Dispatcher) target(ctx context.Context, a *notificationv1beta3.Alert) (target, error) {
	p := &notificationv1beta3.Provider{}
	if err := d.Client.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: a.Spec.ProviderRef.Name}, p); err != nil {
		return target{}, fmt.Errorf("reading Provider %s/%s: %w", a.Namespace, a.Spec.ProviderRef.Name, err)
	}
	if p.Spec.Suspend {
		return target{}, fmt.Errorf("Provider %s/%s is suspended", p.Namespace, p.Name)
	}
	if err := Supported(p.Spec.Type); err != nil {
		return target{}, err
	}
	t := target{typ: p.Spec.Type, address: p.Spec.Address, channel: p.Spec.Channel, username: p.Spec.Username, timeout: 15 * time.Second}
	if p.Spec.Timeout != nil && p.Spec.Timeout.Duration > 0 {
		t.timeout = p.Spec.Timeout.Duration
	}
	if p.Spec.SecretRef != nil {
		s := &corev1.Secret{}
		if err := d.Reader.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.Spec.SecretRef.Name}, s); err != nil {
			return target{}, fmt.Errorf("reading the Secret of Provider %s/%s: %w", p.Namespace, p.Name, err)
		}
		if v := strings.TrimSpace(string(s.Data["address"])); v != "" {
			t.address = v
		}
		t.token = strings.TrimSpace(string(s.Data["token"]))
		if v := strings.TrimSpace(string(s.Data["username"])); v != "" {
			t.username = v
		}
		t.password = strings.TrimSpace(string(s.Data["password"]))
		h, err := parseHeaders(s.Data["headers"])
		if err != nil {
			return target{}, fmt.Errorf("Provider %s/%s: %w", p.Namespace, p.Name, err)
		}
		t.headers = h
	}
	hc, err := d.providerClient(ctx, p)
	if err != nil {
		return target{}, fmt.Errorf("Provider %s/%s: %w", p.Namespace, p.Name, err)
	}
	t.client = hc
	if t.address == "" {
		return target{}, fmt.Errorf("Provider %s/%s has no address (spec.address or the address key of its Secret)", p.Namespace, p.Name)
	}
	if p.Spec.Type == notificationv1beta3.GenericHMACProvider && t.token == "" {
		return target{}, fmt.Errorf("Provider %s/%s of type generic-hmac needs a token in its Secret", p.Namespace, p.Name)
	}
	return t, nil
}

// providerClient builds the HTTP client of a Provider with a certSecretRef
// (its CA, or a client certificate) or a proxy (proxySecretRef, or the
// deprecated spec.proxy), and nil for one with neither. A Provider's
// settings never change another's: each gets its own transport.
func (d *Dispatcher) providerClient(ctx context.Context, p *notificationv1beta3.Provider) (*http.Client, error) {
	var tlsConfig *tls.Config
	var proxy *url.URL
	if p.Spec.CertSecretRef != nil && p.Spec.CertSecretRef.Name != "" {
		s := &corev1.Secret{}
		if err := d.Reader.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.Spec.CertSecretRef.Name}, s); err != nil {
			return nil, fmt.Errorf("reading its certSecretRef: %w", err)
		}
		cfg, err := secretconf.TLSConfig(s)
		if err != nil {
			return nil, fmt.Errorf("certSecretRef: %w", err)
		}
		tlsConfig = cfg
	}
	switch {
	case p.Spec.ProxySecretRef != nil && p.Spec.ProxySecretRef.Name != "":
		s := &corev1.Secret{}
		if err := d.Reader.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.Spec.ProxySecretRef.Name}, s); err != nil {
			return nil, fmt.Errorf("reading its proxySecretRef: %w", err)
		}
		u, err := secretconf.ProxyURL(s)
		if err != nil {
			return nil, fmt.Errorf("proxySecretRef: %w", err)
		}
		proxy = u
	case p.Spec.Proxy != "":
		u, err := url.Parse(p.Spec.Proxy)
		if err != nil || u.Host == "" {
			return nil, errors.New("spec.proxy is not a proxy URL such as http://proxy:3128")
		}
		proxy = u
	}
	if tlsConfig == nil && proxy == nil {
		return nil, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tlsConfig != nil {
		tr.TLSClientConfig = tlsConfig
	}
	if proxy != nil {
		tr.Proxy = http.ProxyURL(proxy)
	}
	return &http.Client{Transport: tr}, nil
}
