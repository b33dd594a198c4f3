package chaos

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

// weir killed with SIGKILL while Helm installs a release (its storage
// says pending-install): started again, it recovers the release left
// pending and the HelmRelease turns Ready with the release deployed.
func TestKilledDuringAHelmInstallRecovers(t *testing.T) {
	o := newWeirOptions(t)
	w := startWeir(t, o)
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	reg.PushChart(t, "charts/slow", "1.0.0", writeChart(t))
	src := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chart"},
		Spec: sourcev1.OCIRepositorySpec{
			URL:       reg.URL("charts/slow"),
			Interval:  metav1.Duration{Duration: time.Hour},
			Insecure:  true,
			Reference: &sourcev1.OCIRepositoryRef{Tag: "1.0.0"},
			LayerSelector: &sourcev1.OCILayerSelector{
				MediaType: testenv.HelmChartMediaType, Operation: sourcev1.OCILayerCopy,
			},
		},
	}
	if err := env.Client.Create(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "slow"},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Timeout:  &metav1.Duration{Duration: 2 * time.Minute},
			ChartRef: &helmv2.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: "chart"},
		},
	}
	if err := env.Client.Create(context.Background(), hr); err != nil {
		t.Fatal(err)
	}

	// Helm marks the release pending-install in its storage before it
	// creates anything, and deployed once every object is Ready (wait is
	// on by default): kill weir in between.
	deadline := time.Now().Add(3 * time.Minute)
	for status := ""; status != "pending-install"; status = releaseStatus(t, ns) {
		if status == "deployed" {
			t.Fatal("the install finished before weir could be killed during it")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the install did not start within 3 minutes (storage says %q)", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.kill()
	if s := releaseStatus(t, ns); s != "pending-install" {
		t.Fatalf("after the kill the release is %q, not pending-install: the kill came too late to test recovery", s)
	}

	startWeir(t, o)
	deadline = time.Now().Add(3 * time.Minute)
	for {
		got := &helmv2.HelmRelease{}
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(hr), got)
		if err == nil && conditions.IsReady(got) && got.Status.ObservedGeneration == got.Generation && releaseStatus(t, ns) == "deployed" {
			t.Logf("recovered: %s", conditions.GetMessage(got, meta.ReadyCondition))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the HelmRelease did not recover within 3 minutes: %v %s (storage says %q)", err,
				conditions.GetMessage(got, meta.ReadyCondition), releaseStatus(t, ns))
		}
		time.Sleep(200 * time.Millisecond)
	}
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "slow-config"}, cm); err != nil {
		t.Errorf("the release's ConfigMap is missing after the recovery: %v", err)
	}
}

// releaseStatus is the status of the newest revision of the release
// "slow" in Helm's storage, or "".
func releaseStatus(t *testing.T, ns string) string {
	t.Helper()
	var list corev1.SecretList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{"owner": "helm", "name": "slow"}); err != nil {
		return ""
	}
	newest, status := "", ""
	for _, s := range list.Items {
		if v := s.Labels["version"]; len(v) > len(newest) || (len(v) == len(newest) && v > newest) {
			newest, status = v, s.Labels["status"]
		}
	}
	return status
}

// writeChart writes a chart whose install takes a few seconds: three
// Deployments that Helm waits for.
func writeChart(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "slow")
	files := map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: slow\nversion: 1.0.0\n",
		"templates/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  key: "1"
`,
		"templates/deployments.yaml": `{{- range $i := until 3 }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $.Release.Name }}-{{ $i }}
spec:
  replicas: 3
  selector:
    matchLabels: {app: {{ $.Release.Name }}-{{ $i }}}
  template:
    metadata:
      labels: {app: {{ $.Release.Name }}-{{ $i }}}
    spec:
      containers:
        - name: app
          image: example.invalid/slow:1
{{- end }}
`,
	}
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
