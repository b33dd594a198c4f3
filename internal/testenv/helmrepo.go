package testenv

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// HelmRepo is a Helm HTTP repository on loopback: it serves a folder of
// packaged charts (<name>-<version>.tgz) and an index.yaml generated from
// them with the Helm SDK, as `helm repo index` writes it, optionally behind
// basic auth. The index carries an ETag and a Last-Modified date, so that a
// client can ask for it conditionally, unless DisableCacheHeaders was
// called. It counts the requests it serves.
type HelmRepo struct {
	// URL is the repository's address, http://127.0.0.1:<port>, as a
	// HelmRepository's spec.url.
	URL string

	srv            *httptest.Server
	dir            string
	user, password string
	stopOnce       sync.Once
	noValidators   atomic.Bool

	mu       sync.Mutex
	index    []byte
	modified time.Time

	indexGets, indexNotModified, chartGets, refused atomic.Int64
}

// HelmRepoCounts are the requests a HelmRepo has served.
type HelmRepoCounts struct {
	// IndexGets are the GET requests of index.yaml, whatever the answer.
	IndexGets int64
	// IndexNotModified are the index requests answered 304 Not Modified:
	// the client's copy was current.
	IndexNotModified int64
	// ChartGets are the GET requests of a chart archive.
	ChartGets int64
	// Refused are the requests turned away for missing or wrong
	// credentials.
	Refused int64
}

// NewHelmRepo starts a Helm repository on 127.0.0.1 that asks for
// user/password with basic auth, or lets anyone in when user is empty. It
// starts with no charts and stops when the test ends.
func NewHelmRepo(t testing.TB, user, password string) *HelmRepo {
	t.Helper()
	return newHelmRepo(t, user, password, false)
}

// NewTLSHelmRepo is NewHelmRepo over HTTPS, with a certificate for
// 127.0.0.1 signed by a test authority that clients must be given
// (CACertPEM).
func NewTLSHelmRepo(t testing.TB, user, password string) *HelmRepo {
	t.Helper()
	return newHelmRepo(t, user, password, true)
}

func newHelmRepo(t testing.TB, user, password string, useTLS bool) *HelmRepo {
	t.Helper()
	h := &HelmRepo{dir: t.TempDir(), user: user, password: password}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(h.serve))
	h.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		h.srv.StartTLS()
	} else {
		h.srv.Start()
	}
	h.URL = h.srv.URL
	t.Cleanup(h.Stop)
	h.reindex(t)
	return h
}

// CACertPEM is the PEM certificate of the authority that signed a TLS
// repository's certificate, for a certSecretRef's ca.crt; nil over HTTP.
func (h *HelmRepo) CACertPEM() []byte {
	if h.srv.TLS == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.srv.Certificate().Raw})
}

// DisableCacheHeaders makes the repository answer without ETag and
// Last-Modified, as some static hosts do: a client can then only tell an
// unchanged index by its content.
func (h *HelmRepo) DisableCacheHeaders() { h.noValidators.Store(true) }

// Counts returns the requests served so far.
func (h *HelmRepo) Counts() HelmRepoCounts {
	return HelmRepoCounts{
		IndexGets:        h.indexGets.Load(),
		IndexNotModified: h.indexNotModified.Load(),
		ChartGets:        h.chartGets.Load(),
		Refused:          h.refused.Load(),
	}
}

// Stop shuts the repository down: from then on its address refuses
// connections.
func (h *HelmRepo) Stop() {
	h.stopOnce.Do(func() {
		h.srv.CloseClientConnections()
		h.srv.Close()
	})
}

// AddChart packages the chart in chartDir (see PackageChart), adds it to
// the repository as <name>-<version>.tgz and regenerates the index. It
// returns the package's bytes.
func (h *HelmRepo) AddChart(t testing.TB, chartDir string) []byte {
	t.Helper()
	name, version := chartNameVersion(t, chartDir)
	tgz := PackageChart(t, chartDir)
	if err := os.WriteFile(filepath.Join(h.dir, name+"-"+version+".tgz"), tgz, 0o644); err != nil {
		t.Fatal(err)
	}
	h.reindex(t)
	return tgz
}

// RemoveChart removes version of chart name from the repository and
// regenerates the index.
func (h *HelmRepo) RemoveChart(t testing.TB, name, version string) {
	t.Helper()
	if err := os.Remove(filepath.Join(h.dir, name+"-"+version+".tgz")); err != nil {
		t.Fatal(err)
	}
	h.reindex(t)
}

// Index returns the index.yaml the repository serves now.
func (h *HelmRepo) Index() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.index
}

// reindex generates index.yaml from the folder's charts with the Helm SDK,
// chart URLs relative to the repository as `helm repo index` writes them
// without --url.
func (h *HelmRepo) reindex(t testing.TB) {
	t.Helper()
	idx, err := repo.IndexDirectory(h.dir, "")
	if err != nil {
		t.Fatalf("indexing the charts: %v", err)
	}
	idx.SortEntries()
	b, err := yaml.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.index = b
	// Last-Modified has a resolution of a second: make each index newer
	// than the one before by at least that.
	now := time.Now().Truncate(time.Second)
	if !now.After(h.modified) {
		now = h.modified.Add(time.Second)
	}
	h.modified = now
}

func (h *HelmRepo) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if name == "index.yaml" {
		h.indexGets.Add(1)
	}
	if h.user != "" {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(h.user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(h.password)) != 1 {
			h.refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="weir-test"`)
			http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
			return
		}
	}
	switch {
	case name == "index.yaml":
		h.mu.Lock()
		index, modified := h.index, h.modified
		h.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w}
		if h.noValidators.Load() {
			modified = time.Time{}
		} else {
			sw.Header().Set("ETag", fmt.Sprintf(`"%x"`, sha256.Sum256(index)))
		}
		sw.Header().Set("Content-Type", "text/yaml")
		http.ServeContent(sw, r, "index.yaml", modified, bytes.NewReader(index))
		if sw.status == http.StatusNotModified {
			h.indexNotModified.Add(1)
		}
	case strings.HasSuffix(name, ".tgz") && !strings.Contains(name, "/"):
		h.chartGets.Add(1)
		http.ServeFile(w, r, filepath.Join(h.dir, name))
	default:
		http.NotFound(w, r)
	}
}

// statusWriter remembers the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// ChartVersions lists the versions of chart name the index offers,
// highest first.
func (h *HelmRepo) ChartVersions(t testing.TB, name string) []string {
	t.Helper()
	var idx repo.IndexFile
	if err := yaml.Unmarshal(h.Index(), &idx); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, cv := range idx.Entries[name] {
		out = append(out, cv.Version)
	}
	return out
}

// PackageChart packs the Helm chart in chartDir (a folder holding
// Chart.yaml) into a .tgz as `helm package` does, files under
// <chart name>/, the same bytes for the same files.
func PackageChart(t testing.TB, chartDir string) []byte {
	t.Helper()
	name, _ := chartNameVersion(t, chartDir)
	return tarGz(t, chartDir, name)
}

// chartNameVersion reads the name and version of Chart.yaml in chartDir.
func chartNameVersion(t testing.TB, chartDir string) (name, version string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatalf("reading the chart: %v", err)
	}
	var meta struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		t.Fatalf("parsing Chart.yaml: %v", err)
	}
	if meta.Name == "" || meta.Version == "" {
		t.Fatalf("Chart.yaml in %s needs a name and a version", chartDir)
	}
	return meta.Name, meta.Version
}

// WriteChart writes a small Helm chart into a new folder and returns it:
// Chart.yaml (apiVersion v2, type application) with name and version,
// values.yaml, and a template of a ConfigMap named after the release that
// holds .Values.data. files (slash path to content) are added or replace
// those; an empty content removes a file.
func WriteChart(t testing.TB, name, version string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	all := map[string]string{
		"Chart.yaml":  fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\ntype: application\ndescription: a test chart\n", name, version),
		"values.yaml": "data:\n  greeting: hello\n",
		"templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n" +
			"data:\n{{ toYaml .Values.data | indent 2 }}\n",
	}
	for p, content := range files {
		all[p] = content
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if all[p] == "" {
			continue
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(all[p]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
