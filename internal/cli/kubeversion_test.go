package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/weirhq/weir/internal/testenv"
)

// TestBuildHelmReleaseKubeVersion renders a chart that gates an object on
// the Kubernetes version: --kube-version reaches .Capabilities.KubeVersion.
func TestBuildHelmReleaseKubeVersion(t *testing.T) {
	root := t.TempDir()
	chart := testenv.WriteChart(t, "gated", "1.0.0", map[string]string{
		"templates/new.yaml": "{{- if semverCompare \">=1.99.0-0\" .Capabilities.KubeVersion.Version }}\napiVersion: v1\nkind: ConfigMap\n" +
			"metadata:\n  name: only-on-{{ .Capabilities.KubeVersion.Version }}\n{{- end }}\n",
	})
	hr := "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: gated\n  namespace: default\nspec:\n  interval: 1h\n" +
		"  chartRef:\n    kind: OCIRepository\n    name: gated\n"
	if err := writeTestFile(filepath.Join(root, "app", "hr.yaml"), hr); err != nil {
		t.Fatal(err)
	}
	build := func(flags ...string) (string, error) {
		out, _, err := runSplit(t, append([]string{"build", "hr", "gated", "--path", filepath.Join(root, "app"), "--repo", root, "--chart", chart}, flags...)...)
		return out, err
	}
	out, err := build()
	if err != nil {
		t.Fatalf("build hr: %v\n%s", err, out)
	}
	if strings.Contains(out, "only-on-") {
		t.Errorf("build hr with the default Kubernetes version rendered the gated object:\n%s", out)
	}
	out, err = build("--kube-version", "v1.99.0")
	if err != nil || !strings.Contains(out, "name: only-on-v1.99.0") {
		t.Errorf("build hr --kube-version v1.99.0: %v, want the gated object:\n%s", err, out)
	}
	if _, err := build("--kube-version", "latest"); err == nil || !strings.Contains(err.Error(), "--kube-version: 'latest' is not a Kubernetes version") {
		t.Errorf("build hr --kube-version latest: err = %v", err)
	}
}
