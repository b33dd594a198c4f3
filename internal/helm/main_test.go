package helm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"helm.sh/helm/v4/pkg/action"
	release "helm.sh/helm/v4/pkg/release/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/helm"
	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// chartFiles is a small chart: a Deployment and a ConfigMap from values,
// and a Service whose port comes from values (an invalid port makes the
// API server refuse the release); containerPort, when set, is the
// Deployment's container port.
func chartFiles(version string) map[string]string {
	return map[string]string{
		"Chart.yaml":  "apiVersion: v2\nname: demo\nversion: " + version + "\nappVersion: \"" + version + "\"\n",
		"values.yaml": "replicas: 1\ngreeting: hello\nport: 80\nnodeSelector: {}\nfailRender: false\n",
		"templates/configmap.yaml": `{{- if .Values.failRender }}{{ fail "failRender is set" }}{{- end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
  version: {{ .Chart.Version | quote }}
  {{- with .Values.extra }}
  extra: {{ . | quote }}
  {{- end }}
`,
		"templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with .Values.nodeSelector }}
      nodeSelector: {{ toJson . }}
      {{- end }}
      containers:
        - name: app
          image: example.invalid/demo:{{ .Chart.AppVersion }}
          {{- with .Values.containerPort }}
          ports: [{containerPort: {{ . }}}]
          {{- end }}
`,
		"templates/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{port: {{ .Values.port }}}]
`,
	}
}

// writeChart writes files into a new folder and returns it.
func writeChart(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fixture is a namespace with a registry holding the demo chart and an
// OCIRepository "chart" that follows its versions.
type fixture struct {
	t        *testing.T
	ns       string
	registry *testenv.Registry
	source   *sourcev1.OCIRepository
	// digests are the manifest digests of the versions pushed.
	digests map[string]string
}

func newFixture(t *testing.T, versions ...string) *fixture {
	t.Helper()
	f := &fixture{t: t, ns: env.Namespace(t), registry: testenv.NewRegistry(t, "", ""), digests: map[string]string{}}
	for _, v := range versions {
		f.push(v, chartFiles(v))
	}
	f.source = &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "chart"},
		Spec: sourcev1.OCIRepositorySpec{
			URL:       f.registry.URL("charts/demo"),
			Interval:  metav1.Duration{Duration: time.Hour},
			Insecure:  true,
			Reference: &sourcev1.OCIRepositoryRef{SemVer: ">=1.0.0"},
			LayerSelector: &sourcev1.OCILayerSelector{
				MediaType: testenv.HelmChartMediaType, Operation: sourcev1.OCILayerCopy,
			},
		},
	}
	if err := env.Client.Create(context.Background(), f.source); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) push(version string, files map[string]string) {
	f.t.Helper()
	f.digests[version] = f.registry.PushChart(f.t, "charts/demo", version, writeChart(f.t, files))
}

// chartVersion is the version helm-controller gives a chart pushed to the
// fixture's registry: "<version>+<first 12 hex digits of its manifest
// digest>". Versions not pushed there (HelmChart sources) are unchanged.
func (f *fixture) chartVersion(version string) string {
	d, ok := f.digests[version]
	if !ok {
		return version
	}
	return version + "+" + strings.TrimPrefix(d, "sha256:")[:12]
}

// refreshSource asks the OCIRepository to look for new tags.
func (f *fixture) refreshSource() {
	f.t.Helper()
	annotate(f.t, f.source, meta.ReconcileRequestAnnotation)
}

func annotate(t *testing.T, obj client.Object, key string) {
	t.Helper()
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[key] = time.Now().Format(time.RFC3339Nano)
	if key != meta.ReconcileRequestAnnotation {
		a[meta.ReconcileRequestAnnotation] = a[key]
	}
	obj.SetAnnotations(a)
	if err := env.Client.Patch(context.Background(), obj, patch); err != nil {
		t.Fatal(err)
	}
}

// release creates a HelmRelease of the fixture's chart.
func (f *fixture) release(name string, values string, mutate func(*helmv2.HelmRelease)) *helmv2.HelmRelease {
	f.t.Helper()
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Timeout:  &metav1.Duration{Duration: 30 * time.Second},
			ChartRef: &helmv2.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: "chart"},
		},
	}
	if values != "" {
		hr.Spec.Values = &apiextensionsv1.JSON{Raw: yamlToJSON(f.t, values)}
	}
	if mutate != nil {
		mutate(hr)
	}
	if err := env.Client.Create(context.Background(), hr); err != nil {
		f.t.Fatalf("creating HelmRelease %s: %v", name, err)
	}
	return hr
}

// wait polls the HelmRelease until cond holds.
func (f *fixture) wait(hr *helmv2.HelmRelease, timeout time.Duration, what string, cond func(*helmv2.HelmRelease) bool) *helmv2.HelmRelease {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := &helmv2.HelmRelease{}
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(hr), got)
		if err == nil && cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out after %s waiting for %s %s; status: %s", timeout, hr.Name, what, describe(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady waits until Ready=True with the chart version installed (with
// the OCI digest helm-controller appends, see chartVersion).
func (f *fixture) waitReady(hr *helmv2.HelmRelease, version string) *helmv2.HelmRelease {
	f.t.Helper()
	version = f.chartVersion(version)
	return f.wait(hr, 90*time.Second, "to be Ready with "+version, func(h *helmv2.HelmRelease) bool {
		latest := h.Status.History.Latest()
		return conditions.IsReady(h) && h.Status.ObservedGeneration == h.Generation &&
			latest != nil && latest.ChartVersion == version && latest.Status == "deployed"
	})
}

// waitReason waits until Ready=False with reason.
func (f *fixture) waitReason(hr *helmv2.HelmRelease, reason string) *helmv2.HelmRelease {
	f.t.Helper()
	return f.wait(hr, 90*time.Second, "Ready=False/"+reason, func(h *helmv2.HelmRelease) bool {
		return conditions.IsFalse(h, meta.ReadyCondition) && conditions.GetReason(h, meta.ReadyCondition) == reason
	})
}

// setSpec changes the HelmRelease's spec.
func setSpec(t *testing.T, hr *helmv2.HelmRelease, mutate func(*helmv2.HelmRelease)) {
	t.Helper()
	got := &helmv2.HelmRelease{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(hr), got); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	mutate(got)
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatal(err)
	}
}

func describe(h *helmv2.HelmRelease) string {
	s := ""
	for _, c := range h.Status.Conditions {
		s += fmt.Sprintf("[%s=%s %s: %s] ", c.Type, c.Status, c.Reason, c.Message)
	}
	if l := h.Status.History.Latest(); l != nil {
		s += fmt.Sprintf("latest v%d %s %s@%s", l.Version, l.Status, l.ChartName, l.ChartVersion)
	}
	return s
}

// helmReleases lists the releases of a namespace as `helm list` reads
// them: from the Secrets of Helm's storage.
func helmReleases(t *testing.T, ns string) []*release.Release {
	t.Helper()
	cfg := action.NewConfiguration()
	if err := cfg.Init(helm.NewRESTClientGetter(env.Config, ns), ns, "secret"); err != nil {
		t.Fatal(err)
	}
	list := action.NewList(cfg)
	list.All = true
	res, err := list.Run()
	if err != nil {
		t.Fatal(err)
	}
	var out []*release.Release
	for _, r := range res {
		if rel, ok := r.(*release.Release); ok {
			out = append(out, rel)
		}
	}
	return out
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func yamlToJSON(t *testing.T, y string) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return j
}
