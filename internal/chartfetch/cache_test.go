package chartfetch_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/chartfetch"
	"github.com/weirhq/weir/internal/testenv"
)

// TestRunsShareTheCache fetches one chart from several runs at once into
// one cache: each gets the whole chart.
func TestRunsShareTheCache(t *testing.T) {
	ctx := testContext(t)
	reg := testenv.NewRegistry(t, "", "")
	reg.PushChart(t, "charts/app", "1.0.0", testenv.WriteChart(t, "app", "1.0.0", nil))
	cache := t.TempDir()
	obj := ociRepository(reg.URL("charts/app"), sourcev1.OCIRepositoryRef{Tag: "1.0.0"})
	var wg sync.WaitGroup
	charts := make([]*chartfetch.Chart, 8)
	errs := make([]error, len(charts))
	for i := range charts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			charts[i], errs[i] = (&chartfetch.Fetcher{Cache: cache}).OCIRepository(ctx, obj)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		load(t, charts[i], "app", "1.0.0")
	}
}

// TestIndexWithoutDigestsAndAbsoluteURLs serves an index as some hosts
// write it: absolute chart URLs, on another path, and no digests. The
// chart is then remembered by its name, version and URL.
func TestIndexWithoutDigestsAndAbsoluteURLs(t *testing.T) {
	ctx := testContext(t)
	tgz := testenv.PackageChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	var chartGets atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/repo/index.yaml":
			fmt.Fprintf(w, "apiVersion: v1\nentries:\n  app:\n    - apiVersion: v2\n      name: app\n      version: 1.0.0\n      urls:\n        - %s/downloads/app-1.0.0.tgz\n", srv.URL)
		case "/downloads/app-1.0.0.tgz":
			chartGets.Add(1)
			_, _ = w.Write(tgz)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	repo := &sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: "flux-system"}, Spec: sourcev1.HelmRepositorySpec{URL: srv.URL + "/repo"}}
	f := &chartfetch.Fetcher{Cache: t.TempDir()}
	for range 2 {
		ch, err := f.HelmRepository(ctx, repo, "app", "")
		if err != nil {
			t.Fatal(err)
		}
		load(t, ch, "app", "1.0.0")
		if ch.From != srv.URL+"/downloads/app-1.0.0.tgz" {
			t.Errorf("From = %s", ch.From)
		}
	}
	if n := chartGets.Load(); n != 1 {
		t.Errorf("the chart was downloaded %d times, want once", n)
	}
}

// TestAHostDownIsWaitedForOnce serves a registry that accepts connections
// and never answers: the first chart waits for its timeout, the next one
// of the same host fails at once.
func TestAHostDownIsWaitedForOnce(t *testing.T) {
	ctx := testContext(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	f := (&chartfetch.Fetcher{Cache: t.TempDir()}).WithSecrets(nil)
	for i, name := range []string{"one", "two"} {
		obj := ociRepository("oci://"+l.Addr().String()+"/charts/"+name, sourcev1.OCIRepositoryRef{Tag: "1.0.0"})
		obj.Spec.Timeout = &metav1.Duration{Duration: 300 * time.Millisecond}
		start := time.Now()
		_, err := f.WithSecrets(nil).OCIRepository(ctx, obj)
		wantUnavailable(t, err, "")
		if took := time.Since(start); i == 1 && took > 100*time.Millisecond {
			t.Errorf("the second chart of a host found down took %v", took)
		}
	}
}
