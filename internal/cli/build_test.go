package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runOffline runs weir in this process with no reachable cluster.
func runOffline(t *testing.T, args ...string) (string, error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestBuildRendersTheExampleWithoutACluster(t *testing.T) {
	example := filepath.Join("..", "..", "examples", "cluster")
	out, err := runOffline(t, "build", "ks", "echo",
		"--path", filepath.Join(example, "kubernetes/apps/default/echo/app"), "--repo", example)
	if err != nil {
		t.Fatalf("build failed: %v\n%s", err, out)
	}
	for _, want := range []string{"kind: OCIRepository", "url: oci://ghcr.io/charts/app", "kind: HelmRelease", "domain: echo.home.example", "namespace: default", "app.kubernetes.io/name: echo"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	if _, err := runOffline(t, "build", "ks", "nope", "--path", example, "--repo", example); err == nil || !strings.Contains(err.Error(), "no Kustomization named nope") {
		t.Errorf("want an error naming the missing Kustomization, got %v", err)
	}
}

// TestBuildHelmReleaseRendersTheChartOffline renders the example's
// cert-manager HelmRelease from its chart folder beside the repository:
// values substituted by its Kustomization, the chart's CRD and custom
// resource, Flux's origin labels, and a clear error naming --chart when the
// chart is nowhere on disk.
func TestBuildHelmReleaseRendersTheChartOffline(t *testing.T) {
	example := filepath.Join("..", "..", "examples", "cluster")
	out, err := runOffline(t, "build", "hr", "cert-manager", "--path", filepath.Join(example, "kubernetes/apps/cert-manager/cert-manager/app"))
	if err != nil {
		t.Fatalf("build hr failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"kind: CustomResourceDefinition", "kind: Deployment", "kind: ClusterIssuer",
		"email: certs@home.example", // ${CLUSTER_DOMAIN} from cluster-settings, through the Kustomization
		"helm.toolkit.fluxcd.io/name: cert-manager", "helm.toolkit.fluxcd.io/namespace: cert-manager",
		"--cluster-resource-namespace=cert-manager",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("build hr output lacks %q:\n%s", want, out)
		}
	}

	empty := t.TempDir()
	_, err = runOffline(t, "build", "hr", "cert-manager", "--path", filepath.Join(example, "kubernetes/apps/cert-manager/cert-manager/app"), "--charts", empty, "--offline")
	if err == nil || !strings.Contains(err.Error(), "--chart") || !strings.Contains(err.Error(), "oci://ghcr.io/charts/cert-manager") {
		t.Errorf("want an error naming the chart's origin and --chart, got %v", err)
	}
	_, err = runOffline(t, "build", "hr", "nope", "--path", filepath.Join(example, "kubernetes/apps/cert-manager/cert-manager/app"))
	if err == nil || !strings.Contains(err.Error(), "no HelmRelease named nope") {
		t.Errorf("want an error naming the missing HelmRelease, got %v", err)
	}
}

// TestBuildHelmReleaseMasksSecretsAndReadsValuesFrom renders a chart kept
// in the repository (a GitRepository source) with valuesFrom a ConfigMap
// generated beside the HelmRelease at a targetPath, and prints the
// chart's Secret masked.
func TestBuildHelmReleaseMasksSecretsAndReadsValuesFrom(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		p = filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("charts/secretive/Chart.yaml", "apiVersion: v2\nname: secretive\nversion: 0.1.0\n")
	write("charts/secretive/templates/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\nstringData:\n  password: {{ .Values.password | quote }}\n")
	write("charts/secretive/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  colour: {{ .Values.colour | quote }}\n")
	write("apps/app/kustomization.yaml", "resources: [hr.yaml]\nconfigMapGenerator:\n- name: colours\n  literals: [value=green]\ngeneratorOptions:\n  disableNameSuffixHash: true\n")
	write("apps/app/hr.yaml", `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: app
  namespace: team
spec:
  interval: 1h
  chart:
    spec:
      chart: ./charts/secretive
      sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}
  valuesFrom:
  - kind: ConfigMap
    name: colours
    valuesKey: value
    targetPath: colour
  - kind: Secret
    name: absent
    optional: true
  values:
    password: hunter2
`)
	out, err := runOffline(t, "build", "hr", "app", "--path", filepath.Join(root, "apps", "app"))
	if err != nil {
		t.Fatalf("build hr failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, `colour: green`) {
		t.Errorf("the valuesFrom targetPath value is not rendered:\n%s", out)
	}
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "password: '**SOPS**'") {
		t.Errorf("the chart's Secret is not masked:\n%s", out)
	}
}
