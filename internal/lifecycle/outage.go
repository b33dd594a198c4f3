package lifecycle

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/util/workqueue"
)

// DefaultOutageRetryDelay is how often an object whose reconcile failed
// while the API server did not answer is tried again.
const DefaultOutageRetryDelay = 5 * time.Second

// Outage follows whether the API server answers, from the outcome of the
// manager's own requests, so that an outage does not grow every object's
// back-off. Without it, each object that fails while the API server is
// down waits twice as long after every failure: after a five-minute
// outage, minutes more pass before the objects are tried again. With it,
// failures during an outage do not count towards the back-off, and each
// is retried every RetryDelay, so everything is reconciled again within
// seconds of the API server's return.
//
// WrapTransport observes the requests; Controller's rate limiter reads the
// state. The zero value is ready to use.
type Outage struct {
	// RetryDelay is the retry delay while the API server does not answer;
	// 0 means DefaultOutageRetryDelay.
	RetryDelay time.Duration
	// HoldInterval is how often a read that found the API server down is
	// tried again; 0 means DefaultHoldInterval.
	HoldInterval time.Duration
	// Log, when set, is told when an outage begins and ends.
	Log logr.Logger

	mu    sync.Mutex
	down  bool
	since time.Time
}

// Down reports whether the API server's last answer was a failure to
// answer: a connection refused or reset, a timeout, a 503 or a 504.
func (o *Outage) Down() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.down
}

// WrapTransport returns rt observing every request's outcome, for
// rest.Config.Wrap. A GET (a read, a list, a watch) that finds the API
// server down is held and tried again every HoldInterval until the server
// answers or the request's context ends, so that informers resume within
// HoldInterval of the server's return; writes fail at once.
func (o *Outage) WrapTransport(rt http.RoundTripper) http.RoundTripper {
	return outageTransport{next: rt, o: o}
}

type outageTransport struct {
	next http.RoundTripper
	o    *Outage
}

// DefaultHoldInterval is how often a read held during an outage (see
// Outage.WrapTransport) is tried again.
const DefaultHoldInterval = 500 * time.Millisecond

func (t outageTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for {
		resp, err := t.next.RoundTrip(req)
		down := t.observe(req, resp, err)
		if !down || req.Method != http.MethodGet || req.Body != nil && req.Body != http.NoBody {
			return resp, err
		}
		// A read that found the server down is held and tried again, not
		// failed: the informers' reflectors would otherwise back off up to
		// a minute (client-go's fixed 30 s cap with full jitter) and see
		// nothing for that long after the server is back.
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		timer := time.NewTimer(t.o.holdInterval())
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, fmt.Errorf("the API server did not answer: %w", req.Context().Err())
		case <-timer.C:
		}
	}
}

// observe records what a request's outcome says of the server and tells
// whether it says the server does not answer.
func (t outageTransport) observe(req *http.Request, resp *http.Response, err error) bool {
	switch {
	case err != nil:
		// A request its caller gave up on says nothing of the server.
		if req.Context().Err() != nil {
			return false
		}
		t.o.set(true)
		return true
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
		t.o.set(true)
		return true
	default:
		t.o.set(false)
		return false
	}
}

func (o *Outage) set(down bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down == down {
		return
	}
	now := time.Now()
	if down {
		o.Log.Info("the API server does not answer: failed reconciles are retried at a fixed delay until it does", "retryDelay", o.retryDelay().String())
	} else {
		o.Log.Info("the API server answers again", "outage", now.Sub(o.since).Round(time.Second).String())
	}
	o.down, o.since = down, now
}

func (o *Outage) holdInterval() time.Duration {
	if o.HoldInterval > 0 {
		return o.HoldInterval
	}
	return DefaultHoldInterval
}

func (o *Outage) retryDelay() time.Duration {
	if o.RetryDelay > 0 {
		return o.RetryDelay
	}
	return DefaultOutageRetryDelay
}

// limiter wraps a controller's rate limiter: while the API server does not
// answer, a failure is retried after about RetryDelay (with jitter, so
// that every object does not come back at once) and does not grow the
// object's back-off.
type limiter[T comparable] struct {
	inner workqueue.TypedRateLimiter[T]
	o     *Outage
}

func (l limiter[T]) When(item T) time.Duration {
	if l.o.Down() {
		d := l.o.retryDelay()
		return d/2 + rand.N(d/2+1)
	}
	return l.inner.When(item)
}

func (l limiter[T]) Forget(item T)          { l.inner.Forget(item) }
func (l limiter[T]) NumRequeues(item T) int { return l.inner.NumRequeues(item) }
