package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

// TestHelmReleaseVerbs runs get, reconcile (with --with-source and
// --force), suspend and resume on a live HelmRelease installing the
// example's app chart, as `flux ... hr` does.
func TestHelmReleaseVerbs(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	reg.PushChart(t, "charts/app", "1.0.0", filepath.Join("..", "..", "examples", "charts", "app"))
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
	if len(row) < 5 || row[0] != "app" || row[1] != "1.0.0" || row[2] != "False" || row[3] != "True" {
		t.Errorf("get hr printed\n%s\nwant a row app 1.0.0 False True ...", out)
	}

	out = mustRunWeir(t, "reconcile", "hr", "app", "-n", ns, "--with-source", "--force", "--timeout", "2m")
	if !strings.Contains(out, "► annotating OCIRepository app") || !strings.HasSuffix(out, "✔ applied revision 1.0.0\n") {
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
	if out := mustRunWeir(t, "resume", "hr", "app", "-n", ns, "--timeout", "2m"); !strings.HasSuffix(out, "✔ applied revision 1.0.0\n") {
		t.Errorf("resume hr printed\n%s", out)
	}
}
