package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

// TestSourceHelmAndChartVerbs runs get, reconcile, suspend and resume on a
// live HelmRepository and HelmChart, as `flux ... source helm|chart` does.
func TestSourceHelmAndChartVerbs(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	repo := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "charts"},
		Spec:       sourcev1.HelmRepositorySpec{URL: hr.URL, Interval: metav1.Duration{Duration: time.Hour}},
	}
	chart := &sourcev1.HelmChart{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: sourcev1.HelmChartSpec{
			Chart: "app", Version: "*",
			SourceRef: sourcev1.LocalHelmChartSourceReference{Kind: sourcev1.HelmRepositoryKind, Name: "charts"},
			Interval:  metav1.Duration{Duration: time.Hour},
		},
	}
	for _, o := range []client.Object{repo, chart} {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	waitChartRevision(t, chart, "1.0.0")

	out := mustRunWeir(t, "get", "sources", "chart", "-n", ns)
	row := strings.Fields(strings.Split(out, "\n")[1])
	if len(row) < 5 || row[0] != "app" || row[1] != "1.0.0" || row[2] != "False" || row[3] != "True" ||
		!strings.Contains(out, "pulled 'app' chart with version '1.0.0'") {
		t.Errorf("get sources chart printed\n%s\nwant a row app 1.0.0 False True pulled ...", out)
	}
	out = mustRunWeir(t, "get", "sources", "helm", "-n", ns)
	if row := strings.Fields(strings.Split(out, "\n")[1]); len(row) < 5 || row[0] != "charts" || !strings.HasPrefix(row[1], "sha256:") || row[3] != "True" {
		t.Errorf("get sources helm printed\n%s", out)
	}

	// A new version: reconciling the repository takes the new index, and
	// the chart follows on its own.
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.1.0", nil))
	out = mustRunWeir(t, "reconcile", "source", "helm", "charts", "-n", ns, "--timeout", "1m")
	if !strings.Contains(out, "✔ fetched revision sha256:") {
		t.Errorf("reconcile source helm printed\n%s", out)
	}
	waitChartRevision(t, chart, "1.1.0")
	out = mustRunWeir(t, "reconcile", "source", "chart", "app", "-n", ns, "--timeout", "1m")
	if !strings.HasSuffix(out, "✔ fetched revision 1.1.0\n") {
		t.Errorf("reconcile source chart printed\n%s", out)
	}

	out = mustRunWeir(t, "suspend", "source", "chart", "app", "-n", ns)
	if want := "► suspending source chart app in " + ns + " namespace\n✔ source chart suspended\n"; out != want {
		t.Errorf("suspend printed\n%s\nwant\n%s", out, want)
	}
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.2.0", nil))
	mustRunWeir(t, "reconcile", "source", "helm", "charts", "-n", ns, "--timeout", "1m")
	out = mustRunWeir(t, "resume", "source", "chart", "app", "-n", ns, "--timeout", "1m")
	if !strings.HasSuffix(out, "✔ fetched revision 1.2.0\n") {
		t.Errorf("resume source chart printed\n%s\nwant the version published while suspended, 1.2.0", out)
	}

	// A HelmRepository of type oci has no revision: its Ready message is
	// the outcome.
	oci := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "oci"},
		Spec:       sourcev1.HelmRepositorySpec{URL: "oci://ghcr.io/stefanprodan/charts", Type: sourcev1.HelmRepositoryTypeOCI},
	}
	if err := env.Client.Create(context.Background(), oci); err != nil {
		t.Fatal(err)
	}
	out = mustRunWeir(t, "reconcile", "source", "helm", "oci", "-n", ns, "--timeout", "1m")
	if !strings.HasSuffix(out, "✔ Helm repository is Ready\n") {
		t.Errorf("reconcile of an OCI HelmRepository printed\n%s", out)
	}
}

func waitChartRevision(t *testing.T, obj *sourcev1.HelmChart, revision string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := &sourcev1.HelmChart{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err == nil &&
			conditions.IsReady(got) && got.Status.Artifact != nil && got.Status.Artifact.Revision == revision {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("HelmChart %s is not Ready with %s", obj.Name, revision)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
