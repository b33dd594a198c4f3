package up_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/weirhq/weir/internal/ociregistry"
	"github.com/weirhq/weir/internal/up"
)

// renderChart packages the example chart chartName as weir up pushes it,
// loads the package as Helm does after a pull, and renders it as release
// name in namespace default with values. It returns the chart's CRDs and
// the objects of its templates.
func renderChart(t *testing.T, chartName, release string, values map[string]any) (crds, objs []*unstructured.Unstructured) {
	t.Helper()
	_, tgz, err := ociregistry.PackageChart(filepath.Join("..", "..", "examples", "charts", chartName))
	if err != nil {
		t.Fatal(err)
	}
	c, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ToRenderValues(c, values, common.ReleaseOptions{Name: release, Namespace: "default", Revision: 1, IsInstall: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := engine.Render(c, vals)
	if err != nil {
		t.Fatalf("%s does not render: %v", chartName, err)
	}
	names := make([]string, 0, len(rendered))
	for n := range rendered {
		if strings.HasSuffix(n, ".yaml") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		objs = append(objs, decodeAll(t, n, rendered[n])...)
	}
	for _, f := range c.CRDObjects() {
		crds = append(crds, decodeAll(t, f.Filename, string(f.File.Data))...)
	}
	return crds, objs
}

func decodeAll(t *testing.T, name, text string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(text), 4096)
	for {
		var raw json.RawMessage
		err := d.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		// Through Unstructured's own decoding, so that numbers are int64.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, u)
	}
}

// byKind indexes objects by kind, failing on a kind seen twice.
func byKind(t *testing.T, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if m[o.GetKind()] != nil {
			t.Errorf("two objects of kind %s", o.GetKind())
		}
		m[o.GetKind()] = o
	}
	return m
}

func TestExampleAppChartRendersItsValues(t *testing.T) {
	_, objs := renderChart(t, "app", "echo", map[string]any{
		"replicas": 2,
		"config":   map[string]any{"greeting": "hello", "count": 3},
	})
	kinds := byKind(t, objs)
	if len(kinds) != 3 || kinds["Deployment"] == nil || kinds["Service"] == nil || kinds["ConfigMap"] == nil {
		t.Fatalf("rendered %v, want a Deployment, a Service and a ConfigMap", kinds)
	}
	cm := kinds["ConfigMap"]
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	if cm.GetName() != "echo-config" || data["greeting"] != "hello" || data["count"] != "3" {
		t.Errorf("ConfigMap %s with %v, want echo-config with the config values", cm.GetName(), data)
	}
	deploy := kinds["Deployment"]
	replicas, _, _ := unstructured.NestedInt64(deploy.Object, "spec", "replicas")
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if deploy.GetName() != "echo" || replicas != 2 || len(containers) != 1 {
		t.Fatalf("Deployment %s with %d replicas and %d containers", deploy.GetName(), replicas, len(containers))
	}
	if image := containers[0].(map[string]any)["image"]; image != "example.invalid/demo/app:1.0.0" {
		t.Errorf("image %v, want the fake example.invalid/demo/app:1.0.0", image)
	}
	if kinds["Service"].GetName() != "echo" {
		t.Errorf("Service %s, want echo", kinds["Service"].GetName())
	}

	// A change of config rolls the pods.
	_, other := renderChart(t, "app", "echo", map[string]any{"config": map[string]any{"greeting": "bye"}})
	sum := func(objs []*unstructured.Unstructured) string {
		a, _, _ := unstructured.NestedString(byKind(t, objs)["Deployment"].Object, "spec", "template", "metadata", "annotations", "checksum/config")
		return a
	}
	if sum(objs) == "" || sum(objs) == sum(other) {
		t.Error("the pods' checksum/config does not follow the config")
	}
}

func TestExampleCertManagerChartShipsACRDAndAResourceOfIt(t *testing.T) {
	crds, objs := renderChart(t, "cert-manager", "cert-manager", nil)
	if len(crds) != 1 || crds[0].GetName() != "clusterissuers.cert-manager.example.io" {
		t.Fatalf("CRDs %v, want clusterissuers.cert-manager.example.io", crds)
	}
	kinds := byKind(t, objs)
	issuer := kinds["ClusterIssuer"]
	if len(kinds) != 3 || kinds["Deployment"] == nil || kinds["Service"] == nil || issuer == nil {
		t.Fatalf("rendered %v, want a Deployment, a Service and a ClusterIssuer", kinds)
	}
	typ, _, _ := unstructured.NestedString(issuer.Object, "spec", "type")
	if issuer.GetAPIVersion() != "cert-manager.example.io/v1" || issuer.GetName() != "demo-selfsigned" || typ != "SelfSigned" {
		t.Errorf("ClusterIssuer %s %s of type %s", issuer.GetAPIVersion(), issuer.GetName(), typ)
	}
	containers, _, _ := unstructured.NestedSlice(kinds["Deployment"].Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 || !strings.HasPrefix(containers[0].(map[string]any)["image"].(string), "example.invalid/") {
		t.Errorf("containers %v, want one with a fake example.invalid image", containers)
	}

	_, acme := renderChart(t, "cert-manager", "cert-manager", map[string]any{"clusterIssuer": map[string]any{"acme": map[string]any{"email": "ops@example.invalid"}}})
	spec, _, _ := unstructured.NestedMap(byKind(t, acme)["ClusterIssuer"].Object, "spec")
	if spec["type"] != "ACME" || spec["acme"].(map[string]any)["email"] != "ops@example.invalid" {
		t.Errorf("with an email: spec %v, want an ACME issuer", spec)
	}
	_, none := renderChart(t, "cert-manager", "cert-manager", map[string]any{"clusterIssuer": map[string]any{"create": false}})
	if byKind(t, none)["ClusterIssuer"] != nil {
		t.Error("clusterIssuer.create false still renders a ClusterIssuer")
	}
}

// checkClusterIssuerInstalls creates the cert-manager chart's CRD in the
// session's cluster and then its ClusterIssuer, which the CRD's schema
// admits, while it refuses one of an unknown type.
func checkClusterIssuerInstalls(t *testing.T, s *up.Session) {
	t.Helper()
	ctx := context.Background()
	crds, objs := renderChart(t, "cert-manager", "cert-manager", nil)
	if err := s.Client.Create(ctx, crds[0]); err != nil {
		t.Fatalf("the chart's CRD: %v", err)
	}
	issuer := byKind(t, objs)["ClusterIssuer"]
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.Client.Create(ctx, issuer.DeepCopy())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the chart's ClusterIssuer: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	bad := issuer.DeepCopy()
	bad.SetName("bad")
	_ = unstructured.SetNestedField(bad.Object, "Bogus", "spec", "type")
	if err := s.Client.Create(ctx, bad); err == nil {
		t.Error("the CRD admits a ClusterIssuer of type Bogus")
	}
}
