package lifecycle

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// An outage seen in the manager's own requests keeps failures from growing
// the back-off, and the API server's first answer ends it.
func TestAnOutageDoesNotGrowTheBackOff(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/unavailable" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer up.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()

	o := &Outage{RetryDelay: 2 * time.Second}
	c := &http.Client{Transport: o.WrapTransport(http.DefaultTransport)}
	rl := Options{MinRetryDelay: time.Second, MaxRetryDelay: time.Hour, Outage: o}.Controller(0).RateLimiter
	item := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "app"}}

	// Writes, which are never held, so that each returns at once.
	get := func(url string) {
		if resp, err := c.Post(url, "text/plain", strings.NewReader("x")); err == nil {
			resp.Body.Close()
		}
	}
	get(up.URL)
	if o.Down() {
		t.Fatal("an answer marked the API server down")
	}
	if d := rl.When(item); d != time.Second {
		t.Fatalf("first failure waits %s, want the minimum 1s", d)
	}

	get(goneURL) // connection refused
	if !o.Down() {
		t.Fatal("a refused connection did not mark the API server down")
	}
	for i := range 20 {
		if d := rl.When(item); d > 2*time.Second || d < time.Second {
			t.Fatalf("failure %d during the outage waits %s, want between 1s and the 2s retry delay", i, d)
		}
	}
	get(up.URL + "/unavailable")
	if !o.Down() {
		t.Fatal("a 503 ended the outage")
	}

	get(up.URL)
	if o.Down() {
		t.Fatal("an answer did not end the outage")
	}
	// The 20 failures during the outage did not count: the back-off goes
	// on from the one failure before it.
	if d := rl.When(item); d != 2*time.Second {
		t.Errorf("after the outage the next failure waits %s, want 2s (the back-off from before it)", d)
	}
}

// A read that finds the API server down waits for it and answers once it
// is back, so that an informer resumes at once instead of backing off; a
// read whose caller gives up returns then.
func TestAReadDuringAnOutageWaitsForTheServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // refused until the server below starts

	o := &Outage{HoldInterval: 50 * time.Millisecond}
	c := &http.Client{Transport: o.WrapTransport(&http.Transport{DisableKeepAlives: true})}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/pods?watch=true", nil)
	if _, err := c.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a read whose caller gave up returned %v, want its context's deadline", err)
	}
	if !o.Down() {
		t.Fatal("refused reads did not mark the API server down")
	}

	back := make(chan *http.Server, 1)
	go func() {
		time.Sleep(400 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			back <- nil
			return
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })}
		back <- srv
		_ = srv.Serve(l)
	}()
	start := time.Now()
	resp, err := c.Get("http://" + addr + "/api/v1/pods")
	if err != nil {
		t.Fatalf("a read during the outage failed instead of waiting for the server: %v", err)
	}
	resp.Body.Close()
	if srv := <-back; srv == nil {
		t.Fatal("could not listen again on the server's port")
	} else {
		defer srv.Close()
	}
	if resp.StatusCode != http.StatusOK || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("got %d after %s, want 200 once the server was back", resp.StatusCode, time.Since(start))
	}
	if o.Down() {
		t.Fatal("the answer did not end the outage")
	}

	// A write is not held: it fails at once.
	o2 := &Outage{HoldInterval: 50 * time.Millisecond}
	c2 := &http.Client{Transport: o2.WrapTransport(&http.Transport{DisableKeepAlives: true})}
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	if _, err := c2.Post(goneURL, "text/plain", strings.NewReader("x")); err == nil {
		t.Fatal("a write to a server that is down succeeded")
	}
}
