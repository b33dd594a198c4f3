package testenv

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/weirhq/weir/internal/ociregistry"
)

// Media types of the artifacts `flux push artifact` and `helm push` write.
const (
	FluxConfigMediaType  = ociregistry.FluxConfigMediaType
	FluxContentMediaType = ociregistry.FluxContentMediaType
	HelmConfigMediaType  = ociregistry.HelmConfigMediaType
	HelmChartMediaType   = ociregistry.HelmChartMediaType
)

// RegistryCounts are the requests a Registry has served.
type RegistryCounts = ociregistry.Counts

// Registry is an OCI registry on loopback (internal/ociregistry, over
// go-containerregistry's in-memory registry) for one test, optionally
// behind basic auth or TLS. It counts the manifest and blob requests it
// serves, so that a test can tell a digest check (HEAD) from a pull (GET).
type Registry struct {
	// Host is the registry's host:port, as in oci://Host/repo.
	Host string

	reg *ociregistry.Registry
}

// NewRegistry starts a registry on 127.0.0.1 that asks for user/password
// with basic auth, or lets anyone in when user is empty. It stops when the
// test ends.
func NewRegistry(t testing.TB, user, password string) *Registry {
	t.Helper()
	return newRegistry(t, ociregistry.Options{Username: user, Password: password})
}

// NewTLSRegistry is NewRegistry over HTTPS, with a certificate for
// 127.0.0.1 signed by a test authority that clients must be given
// (CACertPEM) or told to skip.
func NewTLSRegistry(t testing.TB, user, password string) *Registry {
	t.Helper()
	return newRegistry(t, ociregistry.Options{Username: user, Password: password, TLS: true})
}

// NewReferrersRegistry is NewRegistry with the OCI 1.1 referrers API,
// which registries without it replace with the sha256-<hex> referrers tag.
func NewReferrersRegistry(t testing.TB) *Registry {
	t.Helper()
	return newRegistry(t, ociregistry.Options{Referrers: true})
}

func newRegistry(t testing.TB, opts ociregistry.Options) *Registry {
	t.Helper()
	reg, err := ociregistry.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	return &Registry{Host: reg.Host, reg: reg}
}

// Registry is the running registry, for what the test helpers do not
// cover (PushCharts, Transport, Auth).
func (r *Registry) Registry() *ociregistry.Registry { return r.reg }

// CACertPEM is the PEM certificate of the authority that signed a TLS
// registry's certificate, for a certSecretRef's ca.crt; nil over HTTP.
func (r *Registry) CACertPEM() []byte { return r.reg.CACertPEM() }

// URL is the oci:// address of repository repo.
func (r *Registry) URL(repo string) string { return r.reg.URL(repo) }

// Counts returns the requests served so far.
func (r *Registry) Counts() RegistryCounts { return r.reg.Counts() }

// Stop shuts the registry down: from then on its address refuses
// connections, as a registry that is down does.
func (r *Registry) Stop() { r.reg.Stop() }

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

// PushDir pushes the folder dir to repo:tag as `flux push artifact` does
// (see ociregistry.Registry.PushDir) and returns the manifest digest
// ("sha256:<hex>"), failing the test on error.
func (r *Registry) PushDir(t testing.TB, repo, tag, dir string, annotations map[string]string) string {
	t.Helper()
	digest, err := r.reg.PushDir(context.Background(), repo, tag, dir, annotations)
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

// PushChart packs the Helm chart in chartDir as PackageChart does (files
// as they are, without Helm's checks, so that a test can push a chart Helm
// would refuse) and pushes it to repo:tag as `helm push` does: config
// Chart.yaml as JSON, one layer of the chart's .tgz, under Helm's media
// types. It returns the manifest digest, failing the test on error.
func (r *Registry) PushChart(t testing.TB, repo, tag, chartDir string) string {
	t.Helper()
	digest, err := r.reg.PushChartArchive(context.Background(), repo, tag, PackageChart(t, chartDir))
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

// tarGz packs dir under prefix (see ociregistry.TarGz), failing the test
// on error.
func tarGz(t testing.TB, dir, prefix string) []byte {
	t.Helper()
	b, err := ociregistry.TarGz(dir, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
