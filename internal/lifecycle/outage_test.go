package lifecycle

import (
	"net/http"
	"net/http/httptest"
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

	get := func(url string) {
		if resp, err := c.Get(url); err == nil {
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
