package ui

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"
)

// sessionCookie holds a browser's proof that it was given the token.
const sessionCookie = "weir_dashboard_session"

// isLoopbackHost reports whether host names this machine only: localhost
// or an address in 127.0.0.0/8 or ::1. An empty host (every interface) is
// not loopback.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// bearerKey marks a request authenticated by its Authorization header,
// which a browser never sends on its own: such a request needs no CSRF
// token.
type bearerKey struct{}

// guard sets the security headers of every answer and lets a request
// through only when it may see the dashboard: with a token configured, it
// must carry the token; without one (on loopback), it must name a loopback
// host, so that a page whose domain is rebound to 127.0.0.1 gets nothing.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if s.opts.Token == "" {
			host, _, err := net.SplitHostPort(r.Host)
			if err != nil {
				host = r.Host
			}
			if !isLoopbackHost(host) {
				writeError(w, http.StatusForbidden, "this dashboard answers only on a loopback address such as "+s.url)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && s.validToken(token) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bearerKey{}, true)))
			return
		}
		if c, err := r.Cookie(sessionCookie); err == nil && equal(c.Value, s.session()) {
			next.ServeHTTP(w, r)
			return
		}
		if q := r.URL.Query(); q.Has("token") && s.validToken(q.Get("token")) {
			http.SetCookie(w, &http.Cookie{
				Name: sessionCookie, Value: s.session(), Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode,
				Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https",
			})
			// Take the token out of the address bar and the history.
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		h.Set("WWW-Authenticate", `Bearer realm="weir dashboard"`)
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(unauthorizedPage))
			return
		}
		writeError(w, http.StatusUnauthorized, "this dashboard needs its token: send 'Authorization: Bearer TOKEN' or open it once with ?token=TOKEN")
	})
}

const unauthorizedPage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>weir: token needed</title>
<body style="font:16px system-ui,sans-serif;margin:4rem auto;max-width:36rem;color:#1f2328">
<h1 style="font-size:1.4rem">This dashboard needs its token</h1>
<p>It listens on an address other than loopback, so it answers only to requests that carry the token it was started with
(<code>--ui-token</code> or <code>WEIR_UI_TOKEN</code>).</p>
<p>Open it once as <code>http://HOST:PORT/?token=TOKEN</code>: the browser then keeps a session cookie and the token leaves the address bar.</p>
</body></html>`

// validToken compares in constant time, also for tokens of other lengths.
func (s *Server) validToken(token string) bool {
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(s.opts.Token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// session is the cookie value that proves the token was seen: derived from
// the token, so that it changes with it, without being the token itself.
func (s *Server) session() string {
	m := hmac.New(sha256.New, []byte(s.opts.Token))
	m.Write([]byte("weir dashboard session"))
	return hex.EncodeToString(m.Sum(nil))
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// checkCSRF lets an action through when it comes from the dashboard's own
// page: same origin (Sec-Fetch-Site, else Origin against Host) and the
// page's CSRF token in X-CSRF-Token. A request that authenticated with an
// Authorization header needs neither: a browser never adds that header to
// a request another site makes it send.
func (s *Server) checkCSRF(r *http.Request) error {
	if bearer, _ := r.Context().Value(bearerKey{}).(bool); bearer {
		return nil
	}
	if err := s.cop.Check(r); err != nil {
		return errors.New("cross-origin request refused: actions are accepted only from the dashboard's own page")
	}
	if !equal(r.Header.Get("X-CSRF-Token"), s.csrf) {
		return errors.New("missing or wrong CSRF token (X-CSRF-Token): reload the dashboard and try again")
	}
	return nil
}
