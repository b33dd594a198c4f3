package ui_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weirhq/weir/internal/ui"
)

// request sends one request to the dashboard with no cookie jar and no
// redirects followed, and returns the status and body.
func request(t *testing.T, method, rawURL string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([0-9a-f]+)">`)

// csrfToken reads the CSRF token from the page.
func csrfToken(t *testing.T, page string) string {
	t.Helper()
	m := csrfMeta.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the page has no CSRF token:\n%s", page)
	}
	return m[1]
}

func TestNonLoopbackAddressNeedsAToken(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		if srv, err := ui.New(env.Config, ui.Options{Addr: addr}); err == nil {
			srv.Close()
			t.Errorf("New(%q) without a token started; it must refuse", addr)
		} else if !strings.Contains(err.Error(), "set a token") {
			t.Errorf("New(%q) refused with %q, which does not say to set a token", addr, err)
		}
	}
}

func TestLoopbackDashboardAnswersOnlyToLoopbackHosts(t *testing.T) {
	srv := serve(t, ui.Options{Namespace: env.Namespace(t)})
	u, _ := url.Parse(srv.URL())
	for host, want := range map[string]int{
		u.Host:                           http.StatusOK,
		"localhost:" + u.Port():          http.StatusOK,
		"evil.example:" + u.Port():       http.StatusForbidden, // a DNS-rebinding page
		"127.0.0.1.nip.io:" + u.Port():   http.StatusForbidden,
		"dashboard.internal:" + u.Port(): http.StatusForbidden,
	} {
		resp, _ := request(t, "GET", srv.URL(), http.Header{"Host": {host}}, "")
		if resp.StatusCode != want {
			t.Errorf("GET with Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

func TestActionsNeedTheCSRFTokenAndTheSameOrigin(t *testing.T) {
	ns := env.Namespace(t)
	create(t, kustomization(ns, "app"))
	srv := serve(t, ui.Options{Namespace: ns})
	_, page := request(t, "GET", srv.URL(), nil, "")
	token := csrfToken(t, page)
	origin := strings.TrimSuffix(srv.URL(), "/")
	body := `{"kind":"Kustomization","namespace":"` + ns + `","name":"app"}`
	json := "application/json"

	for _, c := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"no CSRF token", http.Header{"Content-Type": {json}}, http.StatusForbidden},
		{"a wrong CSRF token", http.Header{"Content-Type": {json}, "X-Csrf-Token": {strings.Repeat("0", 64)}}, http.StatusForbidden},
		{"another site's page", http.Header{"Content-Type": {json}, "X-Csrf-Token": {token}, "Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://evil.example"}}, http.StatusForbidden},
		{"another origin, no Sec-Fetch-Site", http.Header{"Content-Type": {json}, "X-Csrf-Token": {token}, "Origin": {"http://evil.example"}}, http.StatusForbidden},
		{"a form post", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Csrf-Token": {token}, "Origin": {origin}}, http.StatusUnsupportedMediaType},
		{"the dashboard's page", http.Header{"Content-Type": {json}, "X-Csrf-Token": {token}, "Origin": {origin}, "Sec-Fetch-Site": {"same-origin"}}, http.StatusOK},
	} {
		resp, got := request(t, "POST", srv.URL()+"api/reconcile", c.header, body)
		if resp.StatusCode != c.want {
			t.Errorf("an action from %s: %d %s, want %d", c.name, resp.StatusCode, got, c.want)
		}
	}
	resp, got := request(t, "POST", srv.URL()+"api/reconcile", http.Header{"Content-Type": {json}, "X-Csrf-Token": {token}},
		`{"kind":"Kustomization","namespace":"`+ns+`","name":"nope"}`)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(got, "not found") {
		t.Errorf("an action on a missing object: %d %s, want 404 not found", resp.StatusCode, got)
	}
}

func TestTokenIsCheckedOnEveryRequest(t *testing.T) {
	ns := env.Namespace(t)
	create(t, kustomization(ns, "app"))
	const token = "correct-horse-battery-staple"
	srv := serve(t, ui.Options{Addr: "0.0.0.0:0", Token: token, Namespace: ns})

	for _, path := range []string{"", "assets/app.js", "api/snapshot", "api/stream", "api/object?kind=Kustomization&namespace=" + ns + "&name=app"} {
		if resp, _ := request(t, "GET", srv.URL()+path, nil, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /%s without the token: %d, want 401", path, resp.StatusCode)
		}
		if resp, _ := request(t, "GET", srv.URL()+path, http.Header{"Authorization": {"Bearer wrong"}}, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /%s with a wrong token: %d, want 401", path, resp.StatusCode)
		}
	}
	if resp, _ := request(t, "GET", srv.URL()+"api/snapshot", http.Header{"Authorization": {"Bearer " + token}}, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/snapshot with the token: %d, want 200", resp.StatusCode)
	}

	// ?token= once: a cookie, and the token leaves the address.
	resp, _ := request(t, "GET", srv.URL()+"?token="+token, nil, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("GET /?token=: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		session = c
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || strings.Contains(session.Value, token) {
		t.Fatalf("the session cookie is %+v, want HttpOnly, SameSite=Strict, not the token", session)
	}
	cookie := http.Header{"Cookie": {session.String()}}
	resp, page := request(t, "GET", srv.URL(), cookie, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / with the session cookie: %d", resp.StatusCode)
	}

	// The cookie is sent by the browser on its own: actions need the CSRF
	// token too. A bearer token is not, so a script needs none.
	body := `{"kind":"Kustomization","namespace":"` + ns + `","name":"app"}`
	cookie.Set("Content-Type", "application/json")
	if resp, _ := request(t, "POST", srv.URL()+"api/reconcile", cookie, body); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an action with the cookie and no CSRF token: %d, want 403", resp.StatusCode)
	}
	cookie.Set("X-Csrf-Token", csrfToken(t, page))
	resp, got := request(t, "POST", srv.URL()+"api/reconcile", cookie, body)
	// Allowed through, and refused by the API server: weir:dashboard has
	// no rights in this cluster.
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(got, `User \"weir:dashboard\" cannot patch`) {
		t.Errorf("an action with the cookie and the CSRF token: %d %s, want the API server's 403 for weir:dashboard", resp.StatusCode, got)
	}
	resp, got = request(t, "POST", srv.URL()+"api/reconcile", http.Header{"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"}}, body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(got, `weir:dashboard`) {
		t.Errorf("an action with the bearer token: %d %s, want the API server's 403 for weir:dashboard", resp.StatusCode, got)
	}
}

func TestBrowserWithoutTheTokenIsRefused(t *testing.T) {
	ns := env.Namespace(t)
	create(t, kustomization(ns, "app"))
	const token = "s3cret-dashboard-token"
	// Bound to every interface; the browser connects through 127.0.0.1,
	// but the bind address decides that a token is needed.
	srv := serve(t, ui.Options{Addr: "0.0.0.0:0", Token: token, Namespace: ns})
	b := browser(t)

	resp := value(b, "opening the dashboard without the token", chromedp.NavigateResponse(srv.URL()))
	if resp.Status != http.StatusUnauthorized {
		t.Errorf("without the token, the page answers %d, want 401", resp.Status)
	}
	refused := b.text("body")
	b.do("opening the dashboard with the token",
		chromedp.Navigate(srv.URL()+"?token="+token),
		until(`document.querySelector('g.node[data-name="app"]') !== null`))
	location := value(b, "reading the address", chromedp.Location())
	type answer struct {
		Status int
		Error  string
	}
	status := value(b, "posting an action without the CSRF header", chromedp.Evaluate[answer](`fetch('api/reconcile', {
		method: 'POST', headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({kind: 'Kustomization', namespace: '`+ns+`', name: 'app'})})
		.then(async r => ({Status: r.status, Error: (await r.json()).error}))`, chromedp.EvalAwaitPromise))
	if !strings.Contains(refused, "needs its token") {
		t.Errorf("without the token, the page says %q", refused)
	}
	if strings.Contains(location, token) {
		t.Errorf("the token stays in the address bar: %s", location)
	}
	if status.Status != http.StatusForbidden || !strings.Contains(status.Error, "CSRF") {
		t.Errorf("an action without the CSRF header: %d %q, want 403 for the CSRF token", status.Status, status.Error)
	}
}
