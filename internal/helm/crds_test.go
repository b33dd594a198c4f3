package helm_test

import (
	"context"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// crdChart is a chart shipping a CRD of a group unique to the test, a
// custom resource of it, and a Job run as Helm test hook. From 1.1.0 the
// CRD knows spec.color.
func crdChart(group, version string) map[string]string {
	props := "size: {type: integer}"
	color := ""
	if version != "1.0.0" {
		props += "\n                    color: {type: string}"
		color = "\n  color: blue"
	}
	return map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: widgets\nversion: " + version + "\n",
		"crds/widgets.yaml": strings.ReplaceAll(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.GROUP
spec:
  group: GROUP
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                    PROPS
`, "PROPS", props),
		"templates/widget.yaml": "apiVersion: GROUP/v1\nkind: Widget\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  size: 3" + color + "\n",
		"templates/test.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    helm.sh/hook: test
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: test
          image: example.invalid/test:1
`,
	}
}

func grouped(files map[string]string, group string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[k] = strings.ReplaceAll(v, "GROUP", group)
	}
	return out
}

func crdColor(t *testing.T, group string) bool {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: "widgets." + group}, crd); err != nil {
		t.Fatalf("the chart's CRD is missing: %v", err)
	}
	_, ok := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["color"]
	return ok
}

func TestCRDPoliciesAndTestHooks(t *testing.T) {
	f := newFixture(t)
	group := strings.TrimPrefix(f.ns, "test-") + ".widgets.example.io"
	f.push("1.0.0", grouped(crdChart("GROUP", "1.0.0"), group))
	t.Cleanup(func() {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		crd.Name = "widgets." + group
		_ = env.Client.Delete(context.Background(), crd)
	})
	hr := f.release("shop", "", func(h *helmv2.HelmRelease) {
		h.Spec.Test = &helmv2.Test{Enable: true}
	})
	got := f.waitReady(hr, "1.0.0")
	if !conditions.IsTrue(got, helmv2.TestSuccessCondition) {
		t.Errorf("TestSuccess is not True: %s", describe(got))
	}
	if l := got.Status.History.Latest(); l == nil || !l.HasBeenTested() || !l.HasTestInPhase("Succeeded") {
		t.Errorf("the test hook run is not in the history: %+v", l)
	}
	w := &unstructured.Unstructured{}
	w.SetAPIVersion(group + "/v1")
	w.SetKind("Widget")
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "shop"}, w); err != nil {
		t.Fatalf("the custom resource installed with its CRD is missing: %v", err)
	}

	// The default upgrade policy leaves CRDs alone: the new field is
	// refused by the old schema and the upgrade fails saying so.
	f.push("1.1.0", grouped(crdChart("GROUP", "1.1.0"), group))
	f.refreshSource()
	got = f.waitReason(hr, "RetriesExceeded")
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "spec.color") {
		t.Errorf("the failure does not name the undeclared field: %q", msg)
	}
	if crdColor(t, group) {
		t.Error("the CRD was changed on upgrade with the default Skip policy")
	}

	// CreateReplace updates the CRD before the upgrade, which then passes.
	setSpec(t, hr, func(h *helmv2.HelmRelease) {
		h.Spec.Upgrade = &helmv2.Upgrade{CRDs: helmv2.CreateReplace}
	})
	f.waitReady(hr, "1.1.0")
	if !crdColor(t, group) {
		t.Fatal("CreateReplace did not update the CRD")
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "shop"}, w); err != nil {
		t.Fatal(err)
	}
	if c, _, _ := unstructured.NestedString(w.Object, "spec", "color"); c != "blue" {
		t.Errorf("the custom resource lacks the new field: %v", w.Object["spec"])
	}
}

// TestInstallCreateReplaceUpdatesAnExistingCRD installs a chart whose CRD
// already exists in an older form: with install.crds CreateReplace the CRD
// is updated before the install, as Flux replaces it, and the custom
// resource using the new field installs.
func TestInstallCreateReplaceUpdatesAnExistingCRD(t *testing.T) {
	f := newFixture(t)
	group := strings.TrimPrefix(f.ns, "test-") + ".replace.example.io"
	old := grouped(crdChart("GROUP", "1.0.0"), group)["crds/widgets.yaml"]
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(old), &crd.Object); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), crd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), crd) })
	f.push("1.1.0", grouped(crdChart("GROUP", "1.1.0"), group))
	hr := f.release("fresh", "", func(h *helmv2.HelmRelease) {
		h.Spec.Install = &helmv2.Install{CRDs: helmv2.CreateReplace}
	})
	f.waitReady(hr, "1.1.0")
	if !crdColor(t, group) {
		t.Error("install with CreateReplace left the existing CRD as it was")
	}
}

// failingTestChart's test hook is refused by the API server (a ConfigMap
// key kubectl would refuse too), so `helm test` fails.
func failingTestChart() map[string]string {
	return map[string]string{
		"Chart.yaml":              "apiVersion: v2\nname: flaky\nversion: 1.0.0\n",
		"templates/config.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata: {ok: \"yes\"}\n",
		"templates/bad-test.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    helm.sh/hook: test\ndata: {\"not a key\": \"x\"}\n",
	}
}

// install.remediation.ignoreTestFailures keeps a release whose tests fail
// Ready (TestSuccess False), where test.ignoreFailures alone (false)
// would count the failure against the install.
func TestRemediationIgnoresTestFailures(t *testing.T) {
	f := newFixture(t)
	f.push("1.0.0", failingTestChart())
	yes := true
	hr := f.release("flaky", "", func(h *helmv2.HelmRelease) {
		h.Spec.Test = &helmv2.Test{Enable: true}
		h.Spec.Install = &helmv2.Install{Remediation: &helmv2.InstallRemediation{IgnoreTestFailures: &yes}}
	})
	got := f.wait(hr, 60*time.Second, "Ready with its test failed", func(h *helmv2.HelmRelease) bool {
		return conditions.IsReady(h) && conditions.IsFalse(h, helmv2.TestSuccessCondition)
	})
	if r := conditions.GetReason(got, meta.ReadyCondition); r != helmv2.TestFailedReason {
		t.Errorf("Ready's reason is %q, want %s", r, helmv2.TestFailedReason)
	}
	if got.Status.InstallFailures != 0 || got.Status.Failures != 0 {
		t.Errorf("an ignored test failure was counted: %d install failures, %d failures", got.Status.InstallFailures, got.Status.Failures)
	}
}
