package ociregistry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/weirhq/weir/internal/ociregistry"
)

// examples is the folder of the example charts.
var examples = filepath.Join("..", "..", "examples", "charts")

func TestPushChartsPushesEveryChartAsHelmPushDoes(t *testing.T) {
	r := start(t, ociregistry.Options{})
	ctx := context.Background()
	charts, err := r.PushCharts(ctx, examples)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range charts {
		names = append(names, c.Name+":"+c.Version)
	}
	if got := strings.Join(names, " "); got != "app:1.0.0 cert-manager:1.0.0" {
		t.Fatalf("pushed %q, want the example charts app and cert-manager at 1.0.0", got)
	}

	for _, c := range charts {
		if c.URL != "oci://"+r.Host+"/charts/"+c.Name {
			t.Errorf("%s: URL %s", c.Name, c.URL)
		}
		repo, err := name.NewRepository(r.Host+"/charts/"+c.Name, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		tags, err := remote.List(repo, remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if len(tags) != 1 || tags[0] != "1.0.0" {
			t.Errorf("%s: tags %v, want [1.0.0]", c.Name, tags)
		}
		m := manifest(t, r, "charts/"+c.Name+":1.0.0", nil)
		if m.Digest != c.Digest {
			t.Errorf("%s: tag at %s, pushed %s", c.Name, m.Digest, c.Digest)
		}
		if m.Config.MediaType != ociregistry.HelmConfigMediaType || len(m.Layers) != 1 || m.Layers[0].MediaType != ociregistry.HelmChartMediaType {
			t.Errorf("%s: not Helm's media types: config %s, layers %v", c.Name, m.Config.MediaType, m.Layers)
		}
		if m.Annotations["org.opencontainers.image.title"] != c.Name || m.Annotations["org.opencontainers.image.version"] != "1.0.0" {
			t.Errorf("%s: annotations %v", c.Name, m.Annotations)
		}
		var config struct{ Name, Version, APIVersion string }
		if err := json.Unmarshal(m.config, &config); err != nil || config.Name != c.Name || config.Version != "1.0.0" || config.APIVersion != "v2" {
			t.Errorf("%s: config %s (%v)", c.Name, m.config, err)
		}
		loaded, err := loader.LoadArchive(bytes.NewReader(m.layer))
		if err != nil {
			t.Fatalf("%s: Helm cannot load the pushed chart: %v", c.Name, err)
		}
		if loaded.Name() != c.Name || len(loaded.Templates) == 0 {
			t.Errorf("%s: Helm loaded %s with %d templates", c.Name, loaded.Name(), len(loaded.Templates))
		}
		if c.Name == "cert-manager" && len(loaded.CRDObjects()) != 1 {
			t.Errorf("cert-manager: %d CRDs, want the ClusterIssuer CRD in crds/", len(loaded.CRDObjects()))
		}
	}
}

func TestPushChartGivesTheSameDigestForTheSameChart(t *testing.T) {
	r := start(t, ociregistry.Options{})
	ctx := context.Background()
	dir := writeChart(t, "demo", "0.1.0")
	first, err := r.PushChart(ctx, "charts/demo", "0.1.0", dir)
	if err != nil {
		t.Fatal(err)
	}
	other := start(t, ociregistry.Options{})
	again, err := other.PushChart(ctx, "charts/demo", "0.1.0", dir)
	if err != nil {
		t.Fatal(err)
	}
	if first != again {
		t.Errorf("the same chart gave %s, then %s", first, again)
	}
	writeFile(t, filepath.Join(dir, "values.yaml"), "replicas: 2\n")
	changed, err := r.PushChart(ctx, "charts/demo", "0.1.0", dir)
	if err != nil {
		t.Fatal(err)
	}
	if changed == first {
		t.Error("other values gave the same digest")
	}
}

func TestPushChartsSkipsWhatIsNotAChart(t *testing.T) {
	r := start(t, ociregistry.Options{})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "README.md"), "charts\n")
	writeFile(t, filepath.Join(dir, "notes", "todo.txt"), "x\n")
	writeChart(t, "b", "2.0.0", filepath.Join(dir, "b"))
	writeChart(t, "a", "1.0.0", filepath.Join(dir, "a"))
	charts, err := r.PushCharts(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(charts) != 2 || charts[0].Name != "a" || charts[1].Name != "b" || charts[1].Version != "2.0.0" {
		t.Errorf("pushed %+v, want a then b", charts)
	}
}

func TestPushChartsNamesTheChartThatDoesNotLoad(t *testing.T) {
	r := start(t, ociregistry.Options{})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "broken", "Chart.yaml"), "apiVersion: v2\nname: broken\n")
	_, err := r.PushCharts(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "broken")) {
		t.Errorf("error %v, want one naming the broken chart's folder", err)
	}
	if _, err := r.PushCharts(context.Background(), filepath.Join(dir, "absent")); err == nil {
		t.Error("no error for a charts folder that does not exist")
	}
}

// writeChart writes a one-template chart into dir (a new temporary folder
// when none is given) and returns the folder.
func writeChart(t *testing.T, chartName, version string, dir ...string) string {
	t.Helper()
	d := t.TempDir()
	if len(dir) > 0 {
		d = dir[0]
	}
	writeFile(t, filepath.Join(d, "Chart.yaml"), "apiVersion: v2\nname: "+chartName+"\nversion: "+version+"\n")
	writeFile(t, filepath.Join(d, "values.yaml"), "replicas: 1\n")
	writeFile(t, filepath.Join(d, "templates", "configmap.yaml"),
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  replicas: {{ .Values.replicas | quote }}\n")
	return d
}

// pulled is a manifest and what it points at.
type pulled struct {
	v1.Manifest
	Digest        string
	config, layer []byte
}

// manifest pulls ref (repo:tag) from r with a plain client, and its config
// and first layer.
func manifest(t *testing.T, r *ociregistry.Registry, ref string, opts []remote.Option) pulled {
	t.Helper()
	tag, err := name.NewTag(r.Host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, remote.WithContext(context.Background()), remote.WithAuth(r.Auth()))
	img, err := remote.Image(tag, opts...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	p := pulled{Manifest: *m, Digest: d.String()}
	if p.config, err = img.RawConfigFile(); err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) == 0 {
		t.Fatalf("layers: %v (%d)", err, len(layers))
	}
	// The layer as stored (compressed): a chart's .tgz.
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if p.layer, err = io.ReadAll(rc); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPushChartArchivePushesWhatHelmWouldRefuse(t *testing.T) {
	r := start(t, ociregistry.Options{})
	ctx := context.Background()
	dir := writeChart(t, "broken", "1.0.0")
	writeFile(t, filepath.Join(dir, "values.yaml"), "replicas: [1\n")
	if _, err := r.PushChart(ctx, "charts/broken", "1.0.0", dir); err == nil {
		t.Error("PushChart packaged a chart whose values do not parse")
	}
	tgz, err := ociregistry.TarGz(dir, "broken")
	if err != nil {
		t.Fatal(err)
	}
	digest, err := r.PushChartArchive(ctx, "charts/broken", "1.0.0", tgz)
	if err != nil {
		t.Fatal(err)
	}
	m := manifest(t, r, "charts/broken:1.0.0", nil)
	if m.Digest != digest || m.Annotations["org.opencontainers.image.title"] != "broken" || !bytes.Equal(m.layer, tgz) {
		t.Errorf("pushed %s with annotations %v, want %s holding the archive as given", m.Digest, m.Annotations, digest)
	}

	flat, err := ociregistry.TarGz(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.PushChartArchive(ctx, "charts/broken", "1.0.1", flat); err == nil || !strings.Contains(err.Error(), "Chart.yaml") {
		t.Errorf("an archive without <name>/Chart.yaml: %v, want an error naming Chart.yaml", err)
	}
}
