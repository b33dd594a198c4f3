package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MaxBodySize caps a webhook request's body, as Flux's receiver does:
// larger requests get 413.
const MaxBodySize = 3 << 20

// AllowSHA1Annotation set to "true" on a github Receiver accepts GitHub's
// legacy X-Hub-Signature (HMAC-SHA1) when a request carries no
// X-Hub-Signature-256.
const AllowSHA1Annotation = "receiver.weirhq.github.io/allow-sha1-signature"

// Per receiver, requests beyond this rate get 429: a sender retrying in a
// loop, or a flood on a leaked path, cannot turn into a flood of
// reconciles.
const (
	ratePerSecond = 5
	rateBurst     = 20
)

// apiVersions are the API versions of the kinds a Receiver names without one.
var apiVersions = map[string]string{
	"GitRepository":         "source.toolkit.fluxcd.io/v1",
	"OCIRepository":         "source.toolkit.fluxcd.io/v1",
	"HelmRepository":        "source.toolkit.fluxcd.io/v1",
	"HelmChart":             "source.toolkit.fluxcd.io/v1",
	"Bucket":                "source.toolkit.fluxcd.io/v1",
	"ExternalArtifact":      "source.toolkit.fluxcd.io/v1",
	"Kustomization":         "kustomize.toolkit.fluxcd.io/v1",
	"HelmRelease":           "helm.toolkit.fluxcd.io/v2",
	"ImageRepository":       "image.toolkit.fluxcd.io/v1",
	"ImagePolicy":           "image.toolkit.fluxcd.io/v1",
	"ImageUpdateAutomation": "image.toolkit.fluxcd.io/v1",
	"ArtifactGenerator":     "source.extensions.fluxcd.io/v1beta1",
}

// Server answers webhooks on /hook/<digest> and requests a reconcile of
// the resources of the Receiver that owns the path.
type Server struct {
	// Client finds Receivers (through the index of status.webhookPath)
	// and annotates the resources.
	Client client.Client
	// Reader reads the resources and tokens from the API server.
	Reader client.Reader
	// NoCrossNamespaceRefs refuses resources in other namespaces than the
	// Receiver's.
	NoCrossNamespaceRefs bool
	// Log receives one line per request, without secrets.
	Log logr.Logger

	mu       sync.Mutex
	limiters map[types.NamespacedName]*rate.Limiter
}

// ServeHTTP implements http.Handler. Replies carry no detail an attacker
// could use: the reason goes to the log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, notificationv1.ReceiverWebhookPath) {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read the request body", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	list := &notificationv1.ReceiverList{}
	if err := s.Client.List(ctx, list, client.MatchingFields{webhookPathIndex: r.URL.Path}); err != nil {
		s.Log.Error(err, "listing receivers")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if len(list.Items) == 0 {
		http.NotFound(w, r)
		return
	}
	obj := &list.Items[0]
	log := s.Log.WithValues("reconciler kind", notificationv1.ReceiverKind, "name", obj.Name, "namespace", obj.Namespace)
	if obj.Spec.Suspend || !conditions.IsReady(obj) {
		log.Info("request refused: the receiver is suspended or not ready")
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	if !s.allow(client.ObjectKeyFromObject(obj)) {
		log.Info("request refused: too many requests")
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	}
	token, err := Token(ctx, s.Reader, obj)
	if err != nil {
		log.Error(err, "reading the token")
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	if WebhookPath(token, obj.Name, obj.Namespace) != r.URL.Path {
		// The token changed since the path was written.
		http.NotFound(w, r)
		return
	}
	v, err := verify(obj.Spec.Type, []byte(token), obj.Spec.Events, r.Header, body,
		options{allowSHA1: obj.GetAnnotations()[AllowSHA1Annotation] == "true"})
	switch {
	case errors.Is(err, errUnauthorized):
		log.Info("request refused: " + err.Error())
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	case err != nil:
		log.Info("request refused: " + err.Error())
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if !v.reconcile {
		log.Info("request accepted, nothing to reconcile: "+v.note, "event", v.event)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, v.note+"\n")
		return
	}
	n, err := s.requestReconciles(ctx, obj, body)
	if err != nil {
		log.Error(err, "requesting reconciles", "requested", n)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	log.Info("reconcile requested", "event", v.event, "resources", n)
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, "reconcile requested for %d resources\n", n)
}

// allow applies the receiver's rate limit.
func (s *Server) allow(key types.NamespacedName) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limiters == nil {
		s.limiters = map[types.NamespacedName]*rate.Limiter{}
	}
	l, ok := s.limiters[key]
	if !ok {
		l = rate.NewLimiter(ratePerSecond, rateBurst)
		s.limiters[key] = l
	}
	return l.Allow()
}

// requestReconciles annotates every resource the receiver names (by name,
// or every one matching its labels for "*") with
// reconcile.fluxcd.io/requestedAt, after its filters, and returns how many
// it annotated.
func (s *Server) requestReconciles(ctx context.Context, obj *notificationv1.Receiver, body []byte) (int, error) {
	var req any
	if len(body) > 0 {
		_ = json.Unmarshal(body, &req)
	}
	now := time.Now().Format(time.RFC3339Nano)
	n := 0
	var errs []error
	for i, res := range obj.Spec.Resources {
		ns := res.Namespace
		if ns == "" {
			ns = obj.Namespace
		}
		if s.NoCrossNamespaceRefs && ns != obj.Namespace {
			errs = append(errs, fmt.Errorf("resources[%d] %s/%s is in another namespace, and cross-namespace references are disabled", i, ns, res.Name))
			continue
		}
		targets, err := s.targets(ctx, res.CrossNamespaceObjectReference, ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, t := range targets {
			ok, err := s.accept(ctx, obj.Spec.ResourceFilter, res.Filter, t, req)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !ok {
				continue
			}
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, now)
			if err := s.Client.Patch(ctx, t, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
				errs = append(errs, fmt.Errorf("annotating %s %s/%s: %w", t.Kind, t.Namespace, t.Name, err))
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

// targets reads the objects a resource reference names.
func (s *Server) targets(ctx context.Context, ref notificationv1.CrossNamespaceObjectReference, ns string) ([]*metav1.PartialObjectMetadata, error) {
	apiVersion := ref.APIVersion
	if apiVersion == "" {
		apiVersion = apiVersions[ref.Kind]
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || apiVersion == "" {
		return nil, fmt.Errorf("no API version for kind %q", ref.Kind)
	}
	gvk := gv.WithKind(ref.Kind)
	if ref.Name != "*" {
		o := &metav1.PartialObjectMetadata{}
		o.SetGroupVersionKind(gvk)
		if err := s.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, o); err != nil {
			return nil, fmt.Errorf("unable to read %s '%s/%s': %w", ref.Kind, ns, ref.Name, err)
		}
		return []*metav1.PartialObjectMetadata{o}, nil
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(ref.Kind + "List"))
	if err := s.Reader.List(ctx, list, client.InNamespace(ns), client.MatchingLabels(ref.MatchLabels)); err != nil {
		return nil, fmt.Errorf("listing %s in %s: %w", ref.Kind, ns, err)
	}
	out := make([]*metav1.PartialObjectMetadata, 0, len(list.Items))
	for i := range list.Items {
		o := &list.Items[i]
		o.SetGroupVersionKind(gvk)
		out = append(out, o)
	}
	return out, nil
}

// accept evaluates the receiver's filters for one resource.
func (s *Server) accept(ctx context.Context, resourceFilter, filter string, o *metav1.PartialObjectMetadata, req any) (bool, error) {
	if resourceFilter == "" && filter == "" {
		return true, nil
	}
	res, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return false, err
	}
	vars := map[string]any{"res": res, "req": req}
	for _, expr := range []string{resourceFilter, filter} {
		if expr == "" {
			continue
		}
		e, err := compileFilter(expr)
		if err != nil {
			return false, err
		}
		ok, err := e.EvaluateBoolean(ctx, vars)
		if err != nil {
			return false, fmt.Errorf("evaluating the filter on %s/%s: %w", o.Namespace, o.Name, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// Listen opens the receiver's listener at once, so that a port 0
// resolves before the address is reported.
func Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for webhooks on %s: %w", addr, err)
	}
	return l, nil
}

// Runnable serves the receiver on a listener until its context ends. Every
// replica serves: any of them can annotate.
type Runnable struct {
	Listener net.Listener
	Handler  http.Handler
}

// NeedLeaderElection is false: every replica answers webhooks.
func (s *Runnable) NeedLeaderElection() bool { return false }

// Start serves until ctx ends, with timeouts on every read and write.
func (s *Runnable) Start(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(s.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving webhooks: %w", err)
	}
	return nil
}
