package repo

import (
	"slices"
	"strings"
	"testing"

	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/testenv"
)

const certManagerApp = "kubernetes/apps/cert-manager/app"

// Same-named Kustomizations whose namespace comes from the enclosing
// kustomization.yaml are told apart by their file, their cluster or the
// path rendered; -n matches the namespace kustomize gives them.
func TestSameNamedKustomizationsAreChosenByFileClusterOrPath(t *testing.T) {
	root, keys := multicluster(t)

	_, _, err := build(t, root, BuildOptions{Query: Query{Name: "cert-manager", Namespace: "flux-system", Path: certManagerApp}, Keys: keys})
	if err == nil {
		t.Fatal("three cert-manager Kustomizations in flux-system: want an error asking to choose")
	}
	wantIn(t, "the error", err.Error(), "3 Kustomizations named cert-manager",
		"flux-system/cert-manager in kubernetes/clusters/main/apps/platform/cert-manager.yaml, applied by cluster main (kubernetes/clusters/main)",
		"cluster test", "--kustomization-file", "--cluster")

	for _, c := range clusters {
		file := "kubernetes/clusters/" + c + "/apps/platform/cert-manager.yaml"
		out, b, err := build(t, root, BuildOptions{Query: Query{Name: "cert-manager", Namespace: "flux-system", File: file, Path: certManagerApp}, Keys: keys})
		if err != nil {
			t.Fatalf("the file of cluster %s: %v", c, err)
		}
		wantIn(t, "cluster "+c+"'s cert-manager", out, "name: wildcard-"+c, "cluster: "+c, "draw: draw."+c+".secret.example")
		if b.Cluster.Name != c || b.Kustomization.Namespace != "flux-system" {
			t.Errorf("the file of cluster %s: rendered in cluster %s, namespace %q", c, b.Cluster.Name, b.Kustomization.Namespace)
		}

		out, _, err = build(t, root, BuildOptions{Query: Query{Name: "cert-manager", Cluster: c, Path: certManagerApp}, Keys: keys})
		if err != nil {
			t.Fatalf("cluster %s: %v", c, err)
		}
		wantIn(t, "cluster "+c+"'s cert-manager", out, "name: wildcard-"+c)

		// Each cluster's echo has its own spec.path: the path chooses.
		out, _, err = build(t, root, BuildOptions{Query: Query{Name: "echo", Path: "kubernetes/apps/echo/overlays/" + c}})
		if err != nil {
			t.Fatalf("echo of cluster %s: %v", c, err)
		}
		wantIn(t, "cluster "+c+"'s echo", out, "host: echo."+c+".home.example")
	}

	// podinfo: one file every cluster applies, in the namespace of its
	// kustomization.yaml, reading no cluster values: one object.
	out, _, err := build(t, root, BuildOptions{Query: Query{Name: "podinfo", Namespace: "podinfo", Path: "kubernetes/apps/base/podinfo/app"}})
	if err != nil {
		t.Fatalf("podinfo in podinfo: %v", err)
	}
	wantIn(t, "podinfo", out, "name: podinfo", "message: hello from podinfo", "kustomize.toolkit.fluxcd.io/namespace: podinfo")
	_, _, err = build(t, root, BuildOptions{Query: Query{Name: "podinfo", Namespace: "flux-system", Path: "kubernetes/apps/base/podinfo/app"}})
	if err == nil || !strings.Contains(err.Error(), "no Kustomization named podinfo in namespace flux-system") {
		t.Errorf("podinfo is applied in podinfo, not flux-system: got %v", err)
	}
}

// A substituteFrom Secret that only the cluster has (ExternalSecrets)
// leaves its variables as written and says so; Strict fails.
func TestASourceOnlyInTheClusterLeavesItsVariablesAsWritten(t *testing.T) {
	root, _ := multicluster(t)
	q := Query{Name: "echo", Path: "kubernetes/apps/echo/overlays/test"}
	out, b, err := build(t, root, BuildOptions{Query: q})
	if err != nil {
		t.Fatalf("build failed: %v", err)
	}
	wantIn(t, "echo", out, "token: ${TOKEN}", "level: ${LEVEL:=info}", "host: echo.test.home.example", "cluster: test")
	if len(b.Report.Unavailable) != 1 || b.Report.Unavailable[0].Name != "echo-external" || !strings.Contains(b.Report.Unavailable[0].Reason, "not in the repository") {
		t.Errorf("want echo-external reported as not in the repository, got %+v", b.Report.Unavailable)
	}
	if !slices.Equal(b.Report.Unresolved, []string{"LEVEL", "TOKEN"}) {
		t.Errorf("unresolved: want LEVEL, TOKEN, got %v", b.Report.Unresolved)
	}

	_, _, err = build(t, root, BuildOptions{Query: q, Strict: true})
	if err == nil || !strings.Contains(err.Error(), "Secret 'echo-external'") {
		t.Errorf("Strict: want an error naming echo-external, got %v", err)
	}
}

// An encrypted cluster-secrets is decrypted with the keys given, else its
// variables are left as written: ciphertext is never substituted.
func TestEncryptedValuesAreDecryptedOrLeftAsWritten(t *testing.T) {
	root, keys := multicluster(t)
	q := Query{Name: "cert-manager", Cluster: "main", Path: certManagerApp}
	out, b, err := build(t, root, BuildOptions{Query: q})
	if err != nil {
		t.Fatalf("build failed: %v", err)
	}
	wantNotIn(t, "cert-manager without keys", out, "ENC[", "op://")
	wantIn(t, "cert-manager without keys", out, "draw: draw.${SECRET_DOMAIN}", "name: wildcard-main", "- '*.main.home.example'")
	if len(b.Report.Unavailable) != 1 || !strings.Contains(b.Report.Unavailable[0].Reason, "SOPS-encrypted") {
		t.Errorf("want cluster-secrets reported as encrypted, got %+v", b.Report.Unavailable)
	}

	out, _, err = build(t, root, BuildOptions{Query: q, Keys: keys})
	if err != nil {
		t.Fatalf("build with keys failed: %v", err)
	}
	wantIn(t, "cert-manager with keys", out, "draw: draw.main.secret.example", "- draw.main.secret.example")

	other, err := render.ParseAgeKeys(testenv.AgeIdentity(t).String(), "another key")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = build(t, root, BuildOptions{Query: q, Keys: other, Strict: true})
	if err == nil || !strings.Contains(err.Error(), "no age key in another key can decrypt it") {
		t.Errorf("the wrong key with Strict: want an error saying so, got %v", err)
	}
}

// Each cluster reads its own cluster-info, never another cluster's; two
// different ones in a cluster are ambiguous, and said so.
func TestValuesComeFromTheKustomizationsOwnCluster(t *testing.T) {
	root, keys := multicluster(t)
	for _, c := range clusters {
		out, _, err := build(t, root, BuildOptions{Query: Query{Name: "cert-manager", Cluster: c, Path: certManagerApp}, Keys: keys})
		if err != nil {
			t.Fatalf("cluster %s: %v", c, err)
		}
		wantIn(t, "cluster "+c, out, "cluster: "+c)
		for _, other := range clusters {
			if other != c {
				wantNotIn(t, "cluster "+c, out, "cluster: "+other, other+".secret.example")
			}
		}
	}

	writeFile(t, root, "kubernetes/clusters/test/more-info.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-info\n  namespace: flux-system\ndata:\n  CLUSTER: staging\n")
	out, b, err := build(t, root, BuildOptions{Query: Query{Name: "cert-manager", Cluster: "test", Path: certManagerApp}, Keys: keys})
	if err != nil {
		t.Fatalf("two cluster-info: %v", err)
	}
	wantIn(t, "two cluster-info", out, "cluster: ${CLUSTER}")
	if len(b.Report.Unavailable) != 1 || !strings.Contains(b.Report.Unavailable[0].Reason, "applies 2 of them with different data") {
		t.Errorf("want cluster-info reported as ambiguous, got %+v", b.Report.Unavailable)
	}
}

// Bootstrap templates that op inject fills are outside every sync root's
// reach: never values, never even read.
func TestFilesNoClusterAppliesAreNotValues(t *testing.T) {
	root, _ := multicluster(t)
	r := open(t, root)
	for _, c := range r.Clusters() {
		for _, o := range c.Objects {
			if strings.HasPrefix(o.File, "bootstrap/") {
				t.Errorf("cluster %s holds %s", c.Name, o.ID())
			}
		}
	}
	for p := range r.files {
		if strings.HasPrefix(p, "bootstrap/") {
			t.Errorf("%s was read", p)
		}
	}
	for _, c := range clusters {
		out, _, err := build(t, root, BuildOptions{Query: Query{Name: "echo", Path: "kubernetes/apps/echo/overlays/" + c}})
		if err != nil {
			t.Fatalf("echo of %s: %v", c, err)
		}
		wantNotIn(t, "echo of "+c, out, "op://")
	}
}

// Every object carries the labels the controller applies.
func TestBuildPrintsTheOwnerLabels(t *testing.T) {
	root, _ := multicluster(t)
	_, b, err := build(t, root, BuildOptions{Query: Query{Name: "echo", Path: "kubernetes/apps/echo/overlays/main"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range b.Objects {
		if l := o.GetLabels(); l["kustomize.toolkit.fluxcd.io/name"] != "echo" || l["kustomize.toolkit.fluxcd.io/namespace"] != "flux-system" {
			t.Errorf("%s %s has labels %v", o.GetKind(), o.GetName(), l)
		}
	}
}

// The multi-cluster repository: every Kustomization builds, each with its
// own cluster's values, none with ciphertext or a template's value.
func TestEveryKustomizationOfAMultiClusterRepositoryBuilds(t *testing.T) {
	root, keys := multicluster(t)
	for _, c := range clusters {
		for _, tc := range []struct{ name, file, path string }{
			{"cert-manager", "kubernetes/clusters/" + c + "/apps/platform/cert-manager.yaml", certManagerApp},
			{"echo", "kubernetes/clusters/" + c + "/apps/platform/echo.yaml", "kubernetes/apps/echo/overlays/" + c},
			{"podinfo", "kubernetes/apps/base/podinfo/ks.yaml", "kubernetes/apps/base/podinfo/app"},
		} {
			out, _, err := build(t, root, BuildOptions{Query: Query{Name: tc.name, File: tc.file, Cluster: c, Path: tc.path}, Keys: keys})
			if err != nil {
				t.Errorf("%s of cluster %s: %v", tc.name, c, err)
				continue
			}
			wantNotIn(t, tc.name+" of "+c, out, "ENC[", "op://")
			if tc.name != "podinfo" {
				wantIn(t, tc.name+" of "+c, out, "cluster: "+c)
			}
		}
	}
}
