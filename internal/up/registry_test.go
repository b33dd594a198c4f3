package up_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/up"
)

// chartSource is a Kustomization of the root that reads the registry's
// address from the weir-up ConfigMap, and the OCIRepository it applies,
// written as the docs tell users to write them.
var chartSource = map[string]string{
	"clusters/demo/charts.yaml": `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: charts
  namespace: flux-system
spec:
  interval: 30m
  path: ./kubernetes/charts
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  postBuild:
    substituteFrom:
      - kind: ConfigMap
        name: weir-up
        optional: true
`,
	"kubernetes/charts/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ocirepository.yaml\n",
	"kubernetes/charts/ocirepository.yaml": `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: app
  namespace: flux-system
spec:
  interval: 1h
  url: oci://${LOCAL_REGISTRY:=ghcr.io}/charts/app
  ref:
    tag: 1.0.0
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
`,
}

// TestUpPushesTheChartsOfTheFolder runs weir up on a folder with a charts/
// folder (the example charts): its registry serves every chart at
// charts/<name>:<version>, the weir-up ConfigMap holds its address, and an
// OCIRepository whose url substitutes that address turns Ready with the
// chart's digest and an artifact Helm loads. A second run on the same
// state pushes again to a new registry on the same address.
func TestUpPushesTheChartsOfTheFolder(t *testing.T) {
	repo := t.TempDir()
	if err := os.CopyFS(filepath.Join(repo, "charts"), os.DirFS(filepath.Join("..", "..", "examples", "charts"))); err != nil {
		t.Fatal(err)
	}
	for p, content := range chartSource {
		writeFile(t, filepath.Join(repo, filepath.FromSlash(p)), content)
	}
	ctx := context.Background()

	s, err := up.Start(ctx, up.Options{Path: repo})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Stop() }()
	if s.ChartsDir != filepath.Join(repo, "charts") {
		t.Errorf("charts pushed from %q, want PATH/charts", s.ChartsDir)
	}
	digest := checkRegistry(t, s)
	checkOCIRepository(t, s, digest)
	checkClusterIssuerInstalls(t, s)

	// A second run on the same state: a new, empty registry on the same
	// address (it is free again) is filled again.
	first := s.RegistryHost
	s.Stop()
	if resp, err := http.Get("http://" + first + "/v2/"); err == nil {
		resp.Body.Close()
		t.Errorf("the first run's registry still answers at %s", first)
	}
	if s, err = up.Start(ctx, up.Options{Path: repo}); err != nil {
		t.Fatal(err)
	}
	if s.RegistryHost != first {
		t.Errorf("the second run's registry is at %s, not at the first run's free address %s", s.RegistryHost, first)
	}
	if again := checkRegistry(t, s); again != digest {
		t.Errorf("the same chart was pushed as %s, then %s", digest, again)
	}
	checkOCIRepository(t, s, digest)
}

// checkRegistry checks that the session's registry serves the example
// charts and that the weir-up ConfigMap holds its address. It returns the
// app chart's digest.
func checkRegistry(t *testing.T, s *up.Session) string {
	t.Helper()
	ctx := context.Background()
	if !strings.HasPrefix(s.RegistryHost, "127.0.0.1:") {
		t.Fatalf("registry at %q, want 127.0.0.1:PORT", s.RegistryHost)
	}
	var appDigest string
	var names []string
	for _, c := range s.Charts {
		names = append(names, c.Name+":"+c.Version)
		if c.URL != "oci://"+s.RegistryHost+"/charts/"+c.Name {
			t.Errorf("%s at %s", c.Name, c.URL)
		}
		repo, err := name.NewRepository(s.RegistryHost + "/charts/" + c.Name)
		if err != nil {
			t.Fatal(err)
		}
		tags, err := remote.List(repo, remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("listing the tags of %s: %v", c.Name, err)
		}
		if len(tags) != 1 || tags[0] != c.Version {
			t.Errorf("%s: tags %v, want [%s]", c.Name, tags, c.Version)
		}
		desc, err := remote.Head(repo.Tag(c.Version), remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest.String() != c.Digest {
			t.Errorf("%s: tag at %s, pushed %s", c.Name, desc.Digest, c.Digest)
		}
		if c.Name == "app" {
			appDigest = c.Digest
		}
	}
	if got := strings.Join(names, " "); got != "app:1.0.0 cert-manager:1.0.0" {
		t.Fatalf("pushed %q, want app:1.0.0 cert-manager:1.0.0", got)
	}
	cm := &corev1.ConfigMap{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: up.SourceName, Name: up.RegistryConfigMapName}, cm); err != nil {
		t.Fatal(err)
	}
	if got := cm.Data[up.RegistryKey]; got != s.RegistryHost {
		t.Errorf("%s in the ConfigMap is %q, want %s", up.RegistryKey, got, s.RegistryHost)
	}
	return appDigest
}

// checkOCIRepository waits for every Kustomization, then for the
// OCIRepository of the app chart at the session's registry to be Ready
// with the chart's revision, and loads its artifact with Helm.
func checkOCIRepository(t *testing.T, s *up.Session, digest string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.WaitAllReady(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	want := "1.0.0@" + digest
	obj := &sourcev1.OCIRepository{}
	deadline := time.Now().Add(time.Minute)
	for {
		err := s.Client.Get(ctx, client.ObjectKey{Namespace: up.SourceName, Name: "app"}, obj)
		if err == nil && obj.Spec.URL == "oci://"+s.RegistryHost+"/charts/app" && conditions.IsReady(obj) &&
			obj.Status.Artifact != nil && obj.Status.Artifact.Revision == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OCIRepository app: url %s, Ready %q, want %s at the session's registry: %v",
				obj.Spec.URL, conditions.GetMessage(obj, meta.ReadyCondition), want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// From the store, as weir's controllers read it: after a restart the
	// artifact's URL still names the previous run's artifact server until
	// the digest changes.
	body, err := os.ReadFile(filepath.Join(s.StateDir, "artifacts", filepath.FromSlash(obj.Status.Artifact.Path)))
	if err != nil {
		t.Fatalf("reading the artifact: %v", err)
	}
	c, err := loader.LoadArchive(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Helm cannot load the artifact: %v", err)
	}
	if c.Name() != "app" || c.Metadata.Version != "1.0.0" {
		t.Errorf("the artifact is chart %s %s, want app 1.0.0", c.Name(), c.Metadata.Version)
	}
}

func TestUpRefusesAMissingChartsFolder(t *testing.T) {
	_, err := up.Start(context.Background(), up.Options{Path: t.TempDir(), Charts: filepath.Join(t.TempDir(), "nope")})
	if err == nil || !strings.Contains(err.Error(), "charts folder") {
		t.Fatalf("error %v, want one naming the charts folder", err)
	}
}

func TestFindChartsLooksInsideThenBeside(t *testing.T) {
	root := t.TempDir()
	inside := filepath.Join(root, "inside")
	beside := filepath.Join(root, "examples", "cluster")
	none := filepath.Join(t.TempDir(), "alone")
	for _, d := range []string{filepath.Join(inside, "charts"), beside, filepath.Join(root, "examples", "charts"), none} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ path, want string }{
		{inside, filepath.Join(inside, "charts")},
		{beside, filepath.Join(root, "examples", "charts")},
		{none, ""},
	} {
		if got := up.FindCharts(tc.path); got != tc.want {
			t.Errorf("FindCharts(%s) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
