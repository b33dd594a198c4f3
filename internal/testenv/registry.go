package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/subtle"
	"encoding/json"
	"encoding/pem"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/yaml"
)

// Media types of the artifacts `flux push artifact` and `helm push` write.
const (
	FluxConfigMediaType  = "application/vnd.cncf.flux.config.v1+json"
	FluxContentMediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"
	HelmConfigMediaType  = "application/vnd.cncf.helm.config.v1+json"
	HelmChartMediaType   = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
)

// Registry is an OCI registry on loopback (go-containerregistry's in-memory
// registry), optionally behind basic auth. It counts the manifest and blob
// requests it serves, so that a test can tell a digest check (HEAD) from a
// pull (GET).
type Registry struct {
	// Host is the registry's host:port, as in oci://Host/repo.
	Host string

	srv            *httptest.Server
	user, password string
	stopOnce       sync.Once

	manifestHeads, manifestGets, blobGets atomic.Int64
}

// RegistryCounts are the requests a Registry has served.
type RegistryCounts struct {
	// ManifestHeads are HEAD requests of a manifest: digest checks.
	ManifestHeads int64
	// ManifestGets are GET requests of a manifest: the start of a pull.
	ManifestGets int64
	// BlobGets are GET requests of a layer or config blob.
	BlobGets int64
}

// NewRegistry starts a registry on 127.0.0.1 that asks for user/password
// with basic auth, or lets anyone in when user is empty. It stops when the
// test ends.
func NewRegistry(t testing.TB, user, password string) *Registry {
	t.Helper()
	return newRegistry(t, user, password, false)
}

// NewTLSRegistry is NewRegistry over HTTPS, with a certificate for
// 127.0.0.1 signed by a test authority that clients must be given
// (CACertPEM) or told to skip.
func NewTLSRegistry(t testing.TB, user, password string) *Registry {
	t.Helper()
	return newRegistry(t, user, password, true)
}

func newRegistry(t testing.TB, user, password string, useTLS bool) *Registry {
	t.Helper()
	r := &Registry{user: user, password: password}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewUnstartedServer(r.wrap(reg))
	// Clients try TLS first on loopback, then plain HTTP: the attempt that
	// fails is noise.
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		r.srv.StartTLS()
	} else {
		r.srv.Start()
	}
	r.Host = strings.TrimPrefix(strings.TrimPrefix(r.srv.URL, "http://"), "https://")
	t.Cleanup(r.Stop)
	return r
}

// CACertPEM is the PEM certificate of the authority that signed a TLS
// registry's certificate, for a certSecretRef's ca.crt; nil over HTTP.
func (r *Registry) CACertPEM() []byte {
	if r.srv.TLS == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
}

// wrap counts requests and checks credentials in front of the registry.
func (r *Registry) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch p := req.URL.Path; {
		case strings.Contains(p, "/manifests/") && req.Method == http.MethodHead:
			r.manifestHeads.Add(1)
		case strings.Contains(p, "/manifests/") && req.Method == http.MethodGet:
			r.manifestGets.Add(1)
		case strings.Contains(p, "/blobs/sha256:") && req.Method == http.MethodGet:
			r.blobGets.Add(1)
		}
		if r.user != "" {
			u, p, ok := req.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(r.user)) != 1 ||
				subtle.ConstantTimeCompare([]byte(p), []byte(r.password)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="weir-test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}

// URL is the oci:// address of repository repo.
func (r *Registry) URL(repo string) string { return "oci://" + r.Host + "/" + repo }

// Counts returns the requests served so far.
func (r *Registry) Counts() RegistryCounts {
	return RegistryCounts{
		ManifestHeads: r.manifestHeads.Load(),
		ManifestGets:  r.manifestGets.Load(),
		BlobGets:      r.blobGets.Load(),
	}
}

// Stop shuts the registry down: from then on its address refuses
// connections, as a registry that is down does.
func (r *Registry) Stop() {
	r.stopOnce.Do(func() {
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
}

// DockerConfigJSON returns the .dockerconfigjson of a
// kubernetes.io/dockerconfigjson Secret that logs in to the registry as
// user with password.
func (r *Registry) DockerConfigJSON(user, password string) []byte {
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{
		r.Host: map[string]string{"username": user, "password": password},
	}})
	return b
}

// PushFiles writes files (slash path to content) into a folder and pushes
// it as PushDir does.
func (r *Registry) PushFiles(t testing.TB, repo, tag string, files map[string]string, annotations map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r.PushDir(t, repo, tag, dir, annotations)
}

// PushDir pushes the folder dir to repo:tag as `flux push artifact` does:
// one layer, a tar.gz of the folder's files, under Flux's media types, with
// the given manifest annotations. It returns the manifest digest
// ("sha256:<hex>"). The same files and annotations always give the same
// digest.
func (r *Registry) PushDir(t testing.TB, repo, tag, dir string, annotations map[string]string) string {
	t.Helper()
	layer := tarGz(t, dir, "")
	return r.push(t, repo, tag, []byte("{}"), FluxConfigMediaType, layer, FluxContentMediaType, annotations)
}

// PushChart packages the Helm chart in chartDir (a folder holding
// Chart.yaml) as `helm package` does, files under <chart name>/, and pushes
// it to repo:tag as `helm push` does: config Chart.yaml as JSON, one layer
// of the chart's .tgz, under Helm's media types. It returns the manifest
// digest.
func (r *Registry) PushChart(t testing.TB, repo, tag, chartDir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatalf("reading the chart: %v", err)
	}
	var meta map[string]any
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		t.Fatalf("parsing Chart.yaml: %v", err)
	}
	chartName, _ := meta["name"].(string)
	version, _ := meta["version"].(string)
	if chartName == "" || version == "" {
		t.Fatalf("Chart.yaml in %s needs a name and a version", chartDir)
	}
	config, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	annotations := map[string]string{
		"org.opencontainers.image.title":   chartName,
		"org.opencontainers.image.version": version,
	}
	if d, ok := meta["description"].(string); ok && d != "" {
		annotations["org.opencontainers.image.description"] = d
	}
	return r.push(t, repo, tag, config, HelmConfigMediaType, tarGz(t, chartDir, chartName), HelmChartMediaType, annotations)
}

// push uploads the config and the layer and tags a manifest of them.
func (r *Registry) push(t testing.TB, repo, tag string, config []byte, configType string, layer []byte, layerType string, annotations map[string]string) string {
	t.Helper()
	ref, err := name.NewTag(r.Host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatalf("invalid reference %s:%s: %v", repo, tag, err)
	}
	opts := []remote.Option{remote.WithTransport(r.srv.Client().Transport)}
	if r.user != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.user, Password: r.password}))
	}
	cfg := static.NewLayer(config, types.MediaType(configType))
	content := static.NewLayer(layer, types.MediaType(layerType))
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Annotations: annotations}
	for i, l := range []v1.Layer{cfg, content} {
		if err := remote.WriteLayer(ref.Context(), l, opts...); err != nil {
			t.Fatalf("pushing a blob to %s: %v", ref, err)
		}
		d, _ := l.Digest()
		size, _ := l.Size()
		mt, _ := l.MediaType()
		desc := v1.Descriptor{MediaType: mt, Size: size, Digest: d}
		if i == 0 {
			m.Config = desc
		} else {
			m.Layers = append(m.Layers, desc)
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(ref, rawManifest(raw), opts...); err != nil {
		t.Fatalf("pushing the manifest of %s: %v", ref, err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// rawManifest is an OCI image manifest as bytes, for remote.Put.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// tarGz packs the files and folders of dir, sorted, without times or
// owners, under prefix (a folder name, or "" for the archive's root).
func tarGz(t testing.TB, dir, prefix string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		if name == "." || name == "" {
			return nil
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		t.Fatalf("packing %s: %v", dir, err)
	}
	return buf.Bytes()
}
