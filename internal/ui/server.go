package ui

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/kube"
)

// DefaultImpersonateUser is the identity the dashboard acts as when it is
// bound to an address other than loopback and Options.ImpersonateUser is
// empty. Grant it what the dashboard's users may do, for example patch on
// kustomizations and helmreleases.
const DefaultImpersonateUser = "weir:dashboard"

// Options configure the dashboard.
type Options struct {
	// Addr is the host:port to listen on. Empty means 127.0.0.1 on a free
	// port. A host that is not loopback (127.0.0.0/8, ::1, localhost),
	// including an empty host (every interface), needs a Token.
	Addr string
	// Token, when set, is required on every request: as
	// "Authorization: Bearer TOKEN", or once as ?token=TOKEN, which sets a
	// session cookie. It is required whenever Addr is not loopback.
	Token string
	// ImpersonateUser is the user whose RBAC rights decide every action
	// (reconcile, suspend, resume): actions are made with the cluster
	// credentials impersonating it. Off loopback, empty means
	// DefaultImpersonateUser. On loopback, empty means actions are made
	// with the credentials of the rest.Config given to New.
	ImpersonateUser string
	// ImpersonateGroups are the groups of ImpersonateUser.
	ImpersonateGroups []string
	// Namespace limits the dashboard to one namespace; empty shows all.
	Namespace string
	// Logger receives the server's logs; the zero value discards them.
	Logger logr.Logger
}

// Server is a dashboard bound to its address, not yet serving: call Run.
type Server struct {
	opts     Options
	log      logr.Logger
	ln       net.Listener
	url      string
	actingAs string

	cache  cache.Cache
	reader client.Reader // the cache: every object the page shows
	direct client.Client // the API server, as cfg: events
	actor  client.Client // the API server, as the impersonated user: actions

	present   map[string]bool           // the watched kinds whose CRD is installed
	informers map[string]cache.Informer // and their informers

	csrf  string
	index *template.Template
	cop   *http.CrossOriginProtection
	hub   hub
	pokes chan struct{}
}

//go:embed assets
var assets embed.FS

// New checks opts, prepares the informer cache and the clients, and binds
// the listener, so that URL is known and an address in use is reported at
// once. Call Run to serve, or Close to give the address back.
func New(cfg *rest.Config, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("the dashboard address %q is not host:port: %w", opts.Addr, err)
	}
	loopback := isLoopbackHost(host)
	if !loopback && opts.Token == "" {
		return nil, fmt.Errorf("the dashboard address %q is not a loopback address, so anyone who can reach it could act on the cluster: set a token (--ui-token or WEIR_UI_TOKEN), or bind to 127.0.0.1", opts.Addr)
	}
	if !loopback && opts.ImpersonateUser == "" {
		opts.ImpersonateUser = DefaultImpersonateUser
	}
	s := &Server{opts: opts, log: opts.Logger, pokes: make(chan struct{}, 1)}

	cacheOpts := cache.Options{Scheme: kube.Scheme(), ReaderFailOnMissingInformer: true}
	if opts.Namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{opts.Namespace: {}}
	}
	if s.cache, err = cache.New(cfg, cacheOpts); err != nil {
		return nil, fmt.Errorf("preparing the dashboard's watches: %w", err)
	}
	s.reader = s.cache
	if s.direct, err = client.New(cfg, client.Options{Scheme: kube.Scheme()}); err != nil {
		return nil, fmt.Errorf("creating the dashboard's client: %w", err)
	}
	actorCfg := cfg
	if opts.ImpersonateUser != "" {
		actorCfg = rest.CopyConfig(cfg)
		actorCfg.Impersonate = rest.ImpersonationConfig{UserName: opts.ImpersonateUser, Groups: opts.ImpersonateGroups}
		s.actingAs = opts.ImpersonateUser
	}
	if s.actor, err = client.New(actorCfg, client.Options{Scheme: kube.Scheme()}); err != nil {
		return nil, fmt.Errorf("creating the dashboard's client for actions: %w", err)
	}

	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("making the CSRF token: %w", err)
	}
	s.csrf = hex.EncodeToString(b)
	s.cop = http.NewCrossOriginProtection()
	if s.index, err = template.ParseFS(assets, "assets/index.html"); err != nil {
		return nil, fmt.Errorf("reading the dashboard page: %w", err)
	}

	if s.ln, err = net.Listen("tcp", opts.Addr); err != nil {
		return nil, fmt.Errorf("listening on %s for the dashboard: %w", opts.Addr, err)
	}
	s.url = baseURL(s.ln.Addr())
	return s, nil
}

// Serve runs a dashboard with opts against cfg until ctx ends.
func Serve(ctx context.Context, cfg *rest.Config, opts Options) error {
	s, err := New(cfg, opts)
	if err != nil {
		return err
	}
	s.log.Info("dashboard listening", "url", s.URL())
	return s.Run(ctx)
}

// URL is the address to open in a browser, such as http://127.0.0.1:9292/.
// A server bound to every interface is named by 127.0.0.1.
func (s *Server) URL() string { return s.url }

// Close gives back the address of a server that will not Run.
func (s *Server) Close() error { return s.ln.Close() }

// Run watches the cluster and serves the dashboard until ctx ends, then
// closes the open pages' streams and returns. It returns early with an
// error when the server cannot serve.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.watch(ctx); err != nil {
		s.ln.Close()
		return err
	}
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- s.cache.Start(ctx) }()
	snapshotsDone := make(chan struct{})
	go func() {
		defer close(snapshotsDone)
		s.snapshots(ctx)
	}()

	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Streams end with ctx, so that Shutdown does not wait on them.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(s.ln) }()

	var err error
	cacheStopped := false
	select {
	case <-ctx.Done():
	case err = <-serveDone:
		err = fmt.Errorf("serving the dashboard: %w", err)
	case err = <-cacheDone:
		cacheStopped = true
		if err != nil {
			err = fmt.Errorf("watching the cluster for the dashboard: %w", err)
		}
	}
	cancel()
	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer done()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("stopping the dashboard: %w", serr)
	}
	if !cacheStopped {
		<-cacheDone
	}
	<-snapshotsDone
	return err
}

// handler routes the dashboard's requests behind its access checks.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", noCache(http.FileServerFS(static))))
	mux.HandleFunc("GET /api/snapshot", s.serveSnapshot)
	mux.HandleFunc("GET /api/stream", s.serveStream)
	mux.HandleFunc("GET /api/object", s.serveObject)
	mux.HandleFunc("POST /api/reconcile", s.serveAction(actionReconcile))
	mux.HandleFunc("POST /api/suspend", s.serveAction(actionSuspend))
	mux.HandleFunc("POST /api/resume", s.serveAction(actionResume))
	return s.guard(mux)
}

// servePage serves the page with this server's CSRF token in it.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	data := struct{ CSRF, ActingAs string }{s.csrf, s.actingAs}
	if err := s.index.Execute(w, data); err != nil {
		s.log.Error(err, "writing the dashboard page")
	}
}

func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// baseURL names a listener's address for a browser on this machine.
func baseURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String() + "/"
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port)) + "/"
}
