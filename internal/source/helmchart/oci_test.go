package helmchart_test

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func TestAChartFromAnOCIHelmRepository(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "weir", "s3cret")
	reg.PushChart(t, "charts/app", "1.0.0", testenv.WriteChart(t, "app", "1.0.0", nil))
	reg.PushChart(t, "charts/app", "1.1.0", testenv.WriteChart(t, "app", "1.1.0", nil))
	reg.PushChart(t, "charts/app", "2.0.0", testenv.WriteChart(t, "app", "2.0.0", nil))
	createSecret(t, ns, "creds", "", map[string][]byte{"username": []byte("weir"), "password": []byte("s3cret")})
	repo := newHelmRepository(t, ns, "charts", reg.URL("charts"), func(o *sourcev1.HelmRepository) {
		o.Spec.Type = sourcev1.HelmRepositoryTypeOCI
		o.Spec.SecretRef = &meta.LocalObjectReference{Name: "creds"}
	})
	if repo.Status.Artifact != nil {
		t.Fatalf("an OCI HelmRepository has an artifact")
	}

	t.Run("a range", func(t *testing.T) {
		got := waitRevision(t, newHelmChart(t, ns, "range", helmRepoRef("charts"), "app", "<2.0.0", nil), "1.1.0")
		files := testenv.TarFiles(t, testenv.Download(t, got.Status.Artifact))
		if !strings.Contains(files["app/Chart.yaml"], "version: 1.1.0") {
			t.Errorf("the artifact is not chart 1.1.0: %v", files["app/Chart.yaml"])
		}
		if r := conditions.Get(got, meta.ReadyCondition); r.Message != "pulled 'app' chart with version '1.1.0'" {
			t.Errorf("Ready %q", r.Message)
		}
	})
	t.Run("an exact version, without listing tags", func(t *testing.T) {
		waitRevision(t, newHelmChart(t, ns, "exact", helmRepoRef("charts"), "app", "1.0.0", nil), "1.0.0")
	})
	t.Run("a version that does not exist", func(t *testing.T) {
		got := waitNotReady(t, newHelmChart(t, ns, "missing-version", helmRepoRef("charts"), "app", "9.9.9", nil))
		r := conditions.Get(got, meta.ReadyCondition)
		if r.Reason != "ChartPullError" || !strings.Contains(r.Message, "no version '9.9.9' of the chart at '"+reg.URL("charts/app")+"'") {
			t.Errorf("Ready %s %q", r.Reason, r.Message)
		}
	})
	t.Run("a chart that does not exist", func(t *testing.T) {
		got := waitNotReady(t, newHelmChart(t, ns, "missing-chart", helmRepoRef("charts"), "nope", "", nil))
		r := conditions.Get(got, meta.ReadyCondition)
		if r.Reason != "ChartPullError" || !strings.Contains(r.Message, "no chart at '"+reg.URL("charts/nope")+"'") {
			t.Errorf("Ready %s %q", r.Reason, r.Message)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		newHelmRepository(t, ns, "anonymous", reg.URL("charts"), func(o *sourcev1.HelmRepository) {
			o.Spec.Type = sourcev1.HelmRepositoryTypeOCI
		})
		got := waitNotReady(t, newHelmChart(t, ns, "anonymous", helmRepoRef("anonymous"), "app", "*", nil))
		r := conditions.Get(got, meta.ReadyCondition)
		if r.Reason != sourcev1.AuthenticationFailedReason || !strings.Contains(r.Message, "requires authentication") {
			t.Errorf("Ready %s %q", r.Reason, r.Message)
		}
	})
}
