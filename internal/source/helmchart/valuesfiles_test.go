package helmchart_test

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/testenv"
)

func TestValuesFilesOfTheChartAreMergedIntoItsDefaults(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", map[string]string{
		"values-prod.yaml": "data:\n  env: prod\n  greeting: hi\n",
	}))
	newHelmRepository(t, ns, "charts", hr.URL, nil)

	obj := newHelmChart(t, ns, "app", helmRepoRef("charts"), "app", "1.0.0", func(o *sourcev1.HelmChart) {
		o.Spec.ValuesFiles = []string{"values.yaml", "values-prod.yaml"}
	})
	// The generation is the build metadata, so that consumers see a
	// change of values files as a new version.
	got := waitRevision(t, obj, "1.0.0+1")
	ready := conditions.Get(got, meta.ReadyCondition)
	want := "packaged 'app' chart with version '1.0.0+1' and merged values files [values.yaml values-prod.yaml]"
	if ready.Reason != sourcev1.ChartPackageSucceededReason || ready.Message != want {
		t.Errorf("Ready %s %q\nwant %s %q", ready.Reason, ready.Message, sourcev1.ChartPackageSucceededReason, want)
	}
	files := testenv.TarFiles(t, testenv.Download(t, got.Status.Artifact))
	var values map[string]map[string]string
	if err := yaml.Unmarshal([]byte(files["app/values.yaml"]), &values); err != nil {
		t.Fatal(err)
	}
	if values["data"]["greeting"] != "hi" || values["data"]["env"] != "prod" {
		t.Errorf("merged values.yaml:\n%s", files["app/values.yaml"])
	}
	if !strings.Contains(files["app/Chart.yaml"], "version: 1.0.0+1") {
		t.Errorf("Chart.yaml:\n%s", files["app/Chart.yaml"])
	}
	if got.Status.ObservedValuesFiles != nil {
		t.Errorf("observedValuesFiles %v without ignoreMissingValuesFiles", got.Status.ObservedValuesFiles)
	}

	// A missing file fails the build and keeps the artifact...
	patchChart(t, obj, func(o *sourcev1.HelmChart) { o.Spec.ValuesFiles = []string{"values.yaml", "missing.yaml"} })
	failed := waitNotReady(t, obj)
	if r := conditions.Get(failed, meta.ReadyCondition); r.Reason != "ValuesFilesError" ||
		!strings.Contains(r.Message, "no values file found at path 'missing.yaml'") || !conditions.IsTrue(failed, sourcev1.BuildFailedCondition) {
		t.Errorf("Ready %s %q", r.Reason, r.Message)
	}
	if failed.Status.Artifact.Revision != "1.0.0+1" {
		t.Errorf("artifact %s after a failed build", failed.Status.Artifact.Revision)
	}

	// ...unless it may be missing: the files merged are observed.
	patchChart(t, obj, func(o *sourcev1.HelmChart) { o.Spec.IgnoreMissingValuesFiles = true })
	got = waitRevision(t, obj, "1.0.0+3")
	if v := got.Status.ObservedValuesFiles; len(v) != 1 || v[0] != "values.yaml" {
		t.Errorf("observedValuesFiles %v, want [values.yaml]", v)
	}
}
