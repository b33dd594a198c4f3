package cli

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/repo"
	"github.com/weirhq/weir/internal/testenv"
)

// TestHelmReleaseVerbs runs get, reconcile (with --with-source and
// --force), suspend and resume on a live HelmRelease installing the
// example's app chart, as `flux ... hr` does.
func TestHelmReleaseVerbs(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	manifest := reg.PushChart(t, "charts/app", "1.0.0", filepath.Join("..", "..", "examples", "charts", "app"))
	// helm-controller's revision of a chart from an OCIRepository.
	version := "1.0.0+" + strings.TrimPrefix(manifest, "sha256:")[:12]
	ctx := context.Background()
	src := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: sourcev1.OCIRepositorySpec{URL: reg.URL("charts/app"), Interval: metav1.Duration{Duration: time.Hour}, Insecure: true,
			Reference:     &sourcev1.OCIRepositoryRef{Tag: "1.0.0"},
			LayerSelector: &sourcev1.OCILayerSelector{MediaType: testenv.HelmChartMediaType, Operation: sourcev1.OCILayerCopy}},
	}
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: helmv2.HelmReleaseSpec{Interval: metav1.Duration{Duration: time.Hour},
			ChartRef: &helmv2.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: "app"}},
	}
	for _, o := range []client.Object{src, hr} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := &helmv2.HelmRelease{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(hr), got); err == nil && conditions.IsReady(got) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the HelmRelease did not turn Ready")
		}
		time.Sleep(100 * time.Millisecond)
	}

	out := mustRunWeir(t, "get", "hr", "-n", ns)
	row := strings.Fields(strings.Split(out, "\n")[1])
	if len(row) < 5 || row[0] != "app" || row[1] != version || row[2] != "False" || row[3] != "True" {
		t.Errorf("get hr printed\n%s\nwant a row app %s False True ...", out, version)
	}

	out = mustRunWeir(t, "reconcile", "hr", "app", "-n", ns, "--with-source", "--force", "--timeout", "2m")
	if !strings.Contains(out, "► annotating OCIRepository app") || !strings.HasSuffix(out, "✔ applied revision "+version+"\n") {
		t.Errorf("reconcile hr --with-source --force printed\n%s", out)
	}
	got := &helmv2.HelmRelease{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(hr), got); err != nil {
		t.Fatal(err)
	}
	if l := got.Status.History.Latest(); l == nil || l.Version != 2 {
		t.Errorf("--force did not run an upgrade: %+v", l)
	}

	if out := mustRunWeir(t, "suspend", "hr", "app", "-n", ns); !strings.Contains(out, "✔ helmrelease suspended") {
		t.Errorf("suspend hr printed\n%s", out)
	}
	if out := mustRunWeir(t, "resume", "hr", "app", "-n", ns, "--timeout", "2m"); !strings.HasSuffix(out, "✔ applied revision "+version+"\n") {
		t.Errorf("resume hr printed\n%s", out)
	}
}

// TestTreeShowsWhatHelmReleasesInstalled applies a HelmRelease from Git
// through a Kustomization; `weir tree ks` lists the HelmRelease and, under
// it, what its release installed.
func TestTreeShowsWhatHelmReleasesInstalled(t *testing.T) {
	s := newLiveSource(t, "apps")
	reg := testenv.NewRegistry(t, "", "")
	reg.PushChart(t, "charts/app", "1.0.0", filepath.Join("..", "..", "examples", "charts", "app"))
	hrYAML := `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: app
spec:
  interval: 1h
  url: ` + reg.URL("charts/app") + `
  insecure: true
  ref: {tag: 1.0.0}
  layerSelector: {mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip, operation: copy}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
spec:
  interval: 1h
  chartRef: {kind: OCIRepository, name: app}
`
	s.commit = s.repo.Commit("main", map[string]string{"deploy/hr.yaml": hrYAML}, "add web").String()
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "apps"},
		Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: time.Hour}, Path: "./deploy", Prune: true, Wait: true,
			TargetNamespace: s.ns, Timeout: &metav1.Duration{Duration: 2 * time.Minute},
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "apps"},
		},
	}
	if err := env.Client.Create(context.Background(), ks); err != nil {
		t.Fatal(err)
	}
	mustRunWeir(t, "reconcile", "ks", "apps", "--with-source", "-n", s.ns, "--timeout", "3m")

	out := mustRunWeir(t, "tree", "ks", "apps", "-n", s.ns)
	for _, want := range []string{
		"Kustomization/" + s.ns + "/apps\n",
		"── HelmRelease/" + s.ns + "/web\n",
		"    ├── ConfigMap/" + s.ns + "/web-config\n",
		"    ├── Deployment/" + s.ns + "/web\n",
		"    └── Service/" + s.ns + "/web\n",
		"── OCIRepository/" + s.ns + "/app\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tree output lacks %q:\n%s", want, out)
		}
	}
}

// TestDiffHelmReleaseAgainstTheLiveRelease installs the app chart from a
// local folder's HelmRelease, then diffs the folder against the release in
// Helm's storage: nothing to show (exit 0) while they agree; a values edit
// names the values and the object it changes (exit 1); a local chart the
// release never had names the chart version.
func TestDiffHelmReleaseAgainstTheLiveRelease(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	chartDir := filepath.Join("..", "..", "examples", "charts", "app")
	reg := testenv.NewRegistry(t, "", "")
	manifest := reg.PushChart(t, "charts/app", "1.0.0", chartDir)
	manifests := func(replicas int) string {
		return fmt.Sprintf(`apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: app
spec:
  interval: 1h
  url: %s
  insecure: true
  ref: {tag: 1.0.0}
  layerSelector: {mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip, operation: copy}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
spec:
  interval: 1h
  chartRef: {kind: OCIRepository, name: app}
  valuesFrom:
  - kind: ConfigMap
    name: web-settings
    valuesKey: colour
    targetPath: config.colour
  values:
    replicas: %d
`, reg.URL("charts/app"), replicas)
	}
	dir := t.TempDir()
	writeFile := func(s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "hr.yaml"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(manifests(1))
	// The ConfigMap lives only in the cluster: diff reads valuesFrom there.
	if err := env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-settings"}, Data: map[string]string{"colour": "blue"}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range repo.Decode([]byte(manifests(1))) {
		u.SetNamespace(ns)
		if err := env.Client.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := &helmv2.HelmRelease{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, got); err == nil && conditions.IsReady(got) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the HelmRelease did not turn Ready")
		}
		time.Sleep(100 * time.Millisecond)
	}

	args := []string{"diff", "hr", "web", "-n", ns, "--path", dir, "--repo", dir, "--chart", chartDir}
	if code, out, errOut := runWeir(t, args...); code != 0 || out != "" {
		t.Errorf("diff hr of the installed files exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	writeFile(manifests(3))
	code, out, errOut := runWeir(t, args...)
	if code != 1 {
		t.Errorf("diff hr after a values edit exited %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"► HelmRelease/" + ns + "/web values changed\n  replace /replicas: 3\n",
		"► Deployment/web changed\n  replace /spec/replicas: 3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff hr output lacks %q:\n%s", want, out)
		}
	}

	bumped := filepath.Join(t.TempDir(), "app")
	copyDir(t, chartDir, bumped)
	chartYAML := filepath.Join(bumped, "Chart.yaml")
	b, err := os.ReadFile(chartYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(chartYAML, []byte(strings.Replace(string(b), "version: 1.0.0", "version: 1.1.0", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(manifests(1))
	args[len(args)-1] = bumped
	code, out, _ = runWeir(t, args...)
	live := "1.0.0+" + strings.TrimPrefix(manifest, "sha256:")[:12]
	if code != 1 || !strings.Contains(out, "► HelmRelease/"+ns+"/web chart app "+live+" -> app 1.1.0\n") {
		t.Errorf("diff hr with a new chart version exited %d:\n%s", code, out)
	}
}

// copyDir copies the files of src into dst, recursively.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
