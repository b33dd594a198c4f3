package gitserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
)

// Server serves repositories by name over Git's smart HTTP protocol, at
// /<name>.git and /<name>. It serves fetches only (clone, fetch, ls-remote);
// pushes are refused. The zero value serves nothing until Add is called.
type Server struct {
	mu       sync.RWMutex
	repos    map[string]*git.Repository
	user     string
	password string
}

// New returns a Server with no repositories.
func New() *Server {
	return &Server{}
}

// Add publishes repo under name (for example "cluster", served at
// /cluster.git), replacing any repository of that name. A trailing ".git" in
// name is dropped; a nil repo withdraws the name.
func (s *Server) Add(name string, repo *git.Repository) {
	name = repoName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if repo == nil {
		delete(s.repos, name)
		return
	}
	if s.repos == nil {
		s.repos = make(map[string]*git.Repository)
	}
	s.repos[name] = repo
}

// SetBasicAuth makes every request present these credentials with HTTP basic
// authentication; others get 401 Unauthorized. An empty user turns
// authentication off again.
func (s *Server) SetBasicAuth(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.password = user, password
}

// Handler returns the HTTP handler that speaks the protocol:
// GET /<name>.git/info/refs?service=git-upload-pack and
// POST /<name>.git/git-upload-pack.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// Start listens on addr (for example "127.0.0.1:0") and serves Handler until
// ctx is done, then shuts down, cancelling transfers still running. It
// returns the base URL of the server, such as "http://127.0.0.1:PORT";
// repositories are at that URL followed by "/<name>.git".
func (s *Server) Start(ctx context.Context, addr string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("starting the Git server: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("starting the Git server on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Requests inherit ctx, so transfers stop when it is done.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() {
		// Serve returns http.ErrServerClosed once shut down below; any other
		// error means the listener failed, and there is no caller left to
		// tell: clients then see the connection refused.
		_ = srv.Serve(ln)
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			_ = srv.Close()
		}
	}()
	return baseURL(ln.Addr()), nil
}

// baseURL is the URL clients use for a listener's address; a listener on
// every interface is reached on the loopback one.
func baseURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// The parts of a smart HTTP URL after the repository's path.
const (
	infoRefsPath    = "info/refs"
	uploadPackPath  = "git-upload-pack"
	receivePackPath = "git-receive-pack"
)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="weir", charset="UTF-8"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}

	name, action := splitPath(r.URL.Path)
	if action == "" {
		http.NotFound(w, r)
		return
	}
	repo := s.repository(name)
	if repo == nil {
		http.Error(w, fmt.Sprintf("repository %q not found", name), http.StatusNotFound)
		return
	}

	switch action {
	case infoRefsPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Query().Get("service") {
		case uploadPackPath:
			serveAdvertisement(w, r, repo.Storer)
		case receivePackPath:
			http.Error(w, "this Git server is read-only: pushing is not supported", http.StatusForbidden)
		default:
			// Without a service a client asks for the dumb protocol.
			http.Error(w, "this Git server speaks the smart HTTP protocol only", http.StatusForbidden)
		}
	case uploadPackPath:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		serveUploadPack(w, r, repo.Storer)
	case receivePackPath:
		http.Error(w, "this Git server is read-only: pushing is not supported", http.StatusForbidden)
	}
}

// splitPath splits a request path into the repository's name and what is
// asked of it; action is empty when the path is not a smart HTTP one.
func splitPath(path string) (name, action string) {
	path = strings.TrimPrefix(path, "/")
	for _, a := range []string{infoRefsPath, uploadPackPath, receivePackPath} {
		if repo, ok := strings.CutSuffix(path, "/"+a); ok && repo != "" {
			return repoName(repo), a
		}
	}
	return "", ""
}

// repoName is the name a repository is kept under: "cluster", "/cluster" and
// "cluster.git" are one repository.
func repoName(name string) string {
	return strings.TrimSuffix(strings.Trim(name, "/"), ".git")
}

func (s *Server) repository(name string) *git.Repository {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.repos[name]
}

// authorized checks the request's basic credentials in constant time, so
// that timing tells nothing about the expected ones.
func (s *Server) authorized(r *http.Request) bool {
	s.mu.RLock()
	user, password := s.user, s.password
	s.mu.RUnlock()
	if user == "" {
		return true
	}
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	userOK := equalConstantTime(u, user)
	passwordOK := equalConstantTime(p, password)
	return userOK && passwordOK
}

// equalConstantTime compares digests, which have one length, so that the
// comparison does not reveal the length of the secret either.
func equalConstantTime(a, b string) bool {
	da, db := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(da[:], db[:]) == 1
}
