package cli

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weirhq/weir/internal/testenv"
)

// clusters are the clusters of testdata/multicluster.
var clusters = []string{"main", "test", "utility"}

// multicluster copies the multi-cluster repository of the repo package's
// testdata into a temporary folder and adds each cluster's cluster-secrets,
// SOPS-encrypted with an age key made here (its SECRET_DOMAIN is
// <cluster>.secret.example). It returns the repository and the key file.
func multicluster(t *testing.T) (root, keyFile string) {
	t.Helper()
	root = t.TempDir()
	src := filepath.Join("..", "repo", "testdata", "multicluster")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return writeTestFile(filepath.Join(root, rel), string(b))
	})
	if err != nil {
		t.Fatal(err)
	}
	id := testenv.AgeIdentity(t)
	for _, c := range clusters {
		plain := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-secrets\n  namespace: flux-system\nstringData:\n  SECRET_DOMAIN: " + c + ".secret.example\n"
		if err := writeTestFile(filepath.Join(root, "kubernetes", "clusters", c, "cluster-secrets.sops.yaml"), testenv.EncryptYAML(t, plain, id)); err != nil {
			t.Fatal(err)
		}
	}
	keyFile = filepath.Join(t.TempDir(), "age.key")
	if err := os.WriteFile(keyFile, []byte("# test key\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// No age key from the environment unless a test sets one.
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")
	return root, keyFile
}

func writeTestFile(p, s string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(s), 0o644)
}

// runSplit runs weir in this process with no reachable cluster and
// returns its stdout and stderr apart.
func runSplit(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	// Charts fetched by weir test go to a cache of the test's own.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// buildKs runs weir build ks in the multi-cluster repository at root.
func buildKs(t *testing.T, root, name, path string, flags ...string) (string, string, error) {
	t.Helper()
	args := append([]string{"build", "ks", name, "--path", filepath.Join(root, filepath.FromSlash(path)), "--repo", root}, flags...)
	return runSplit(t, args...)
}

func wantIn(t *testing.T, what, text string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(text, f) {
			t.Errorf("%s lacks %q:\n%s", what, f, text)
		}
	}
}

func wantNotIn(t *testing.T, what, text string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if strings.Contains(text, f) {
			t.Errorf("%s holds %q:\n%s", what, f, text)
		}
	}
}

// Item 1: same-named Kustomizations, their namespace from the enclosing
// kustomization.yaml, are told apart by the file, the cluster or the path.
func TestBuildKsChoosesBetweenSameNamedKustomizations(t *testing.T) {
	root, key := multicluster(t)
	const app = "kubernetes/apps/cert-manager/app"

	_, _, err := buildKs(t, root, "cert-manager", app, "-n", "flux-system", "--age-key-file", key)
	if err == nil {
		t.Fatal("three cert-manager Kustomizations in flux-system: want an error asking to choose")
	}
	wantIn(t, "the error", err.Error(), "3 Kustomizations named cert-manager",
		"kubernetes/clusters/main/apps/platform/cert-manager.yaml", "cluster test", "--kustomization-file", "--cluster")

	for _, c := range clusters {
		file := filepath.Join(root, "kubernetes", "clusters", c, "apps", "platform", "cert-manager.yaml")
		out, _, err := buildKs(t, root, "cert-manager", app, "-n", "flux-system", "--kustomization-file", file, "--age-key-file", key)
		if err != nil {
			t.Fatalf("--kustomization-file of cluster %s: %v", c, err)
		}
		wantIn(t, "cluster "+c+"'s cert-manager", out, "name: wildcard-"+c, "cluster: "+c, "draw: draw."+c+".secret.example")

		out, _, err = buildKs(t, root, "cert-manager", app, "--cluster", c, "--age-key-file", key)
		if err != nil {
			t.Fatalf("--cluster %s: %v", c, err)
		}
		wantIn(t, "cluster "+c+"'s cert-manager", out, "name: wildcard-"+c)

		// Each cluster's echo has its own spec.path: --path chooses.
		out, _, err = buildKs(t, root, "echo", "kubernetes/apps/echo/overlays/"+c)
		if err != nil {
			t.Fatalf("echo of cluster %s: %v", c, err)
		}
		wantIn(t, "cluster "+c+"'s echo", out, "host: echo."+c+".home.example")
	}

	// podinfo: one file every cluster applies, in the namespace its
	// kustomization.yaml gives it, reading no cluster values.
	out, _, err := buildKs(t, root, "podinfo", "kubernetes/apps/base/podinfo/app", "-n", "podinfo")
	if err != nil {
		t.Fatalf("podinfo -n podinfo: %v", err)
	}
	wantIn(t, "podinfo", out, "name: podinfo", "message: hello from podinfo", "kustomize.toolkit.fluxcd.io/namespace: podinfo")
	if _, _, err := buildKs(t, root, "podinfo", "kubernetes/apps/base/podinfo/app", "-n", "flux-system"); err == nil || !strings.Contains(err.Error(), "no Kustomization named podinfo in namespace flux-system") {
		t.Errorf("podinfo is applied in podinfo, not flux-system: got %v", err)
	}
}

// Item 2: a substituteFrom Secret made in the cluster leaves its variables
// as written, listed on stderr; --strict fails.
func TestBuildKsLeavesTheVariablesOfASourceOnlyInTheClusterAsWritten(t *testing.T) {
	root, _ := multicluster(t)
	out, stderr, err := buildKs(t, root, "echo", "kubernetes/apps/echo/overlays/test")
	if err != nil {
		t.Fatalf("build failed: %v", err)
	}
	wantIn(t, "echo", out, "token: ${TOKEN}", "level: ${LEVEL:=info}", "host: echo.test.home.example", "cluster: test")
	wantIn(t, "stderr", stderr, "Secret 'echo-external'", "not in the repository", "unresolved variables, left as written: LEVEL, TOKEN")

	_, _, err = buildKs(t, root, "echo", "kubernetes/apps/echo/overlays/test", "--strict")
	if err == nil || !strings.Contains(err.Error(), "echo-external") {
		t.Errorf("--strict: want an error naming echo-external, got %v", err)
	}
}

// Item 3: an encrypted cluster-secrets is decrypted with a key, else its
// variables are left as written: never ciphertext.
func TestBuildKsNeverSubstitutesCiphertext(t *testing.T) {
	root, key := multicluster(t)
	const app = "kubernetes/apps/cert-manager/app"
	out, stderr, err := buildKs(t, root, "cert-manager", app, "--cluster", "main")
	if err != nil {
		t.Fatalf("build failed: %v", err)
	}
	wantNotIn(t, "cert-manager without a key", out, "ENC[", "op://")
	wantIn(t, "cert-manager without a key", out, "draw: draw.${SECRET_DOMAIN}", "name: wildcard-main")
	wantIn(t, "stderr", stderr, "Secret 'cluster-secrets'", "SOPS-encrypted", "--age-key-file", "SECRET_DOMAIN")

	out, _, err = buildKs(t, root, "cert-manager", app, "--cluster", "main", "--age-key-file", key)
	if err != nil {
		t.Fatalf("build with --age-key-file failed: %v", err)
	}
	wantIn(t, "cert-manager with --age-key-file", out, "draw: draw.main.secret.example")

	t.Setenv("SOPS_AGE_KEY_FILE", key)
	out, _, err = buildKs(t, root, "cert-manager", app, "--cluster", "main")
	if err != nil {
		t.Fatalf("build with SOPS_AGE_KEY_FILE failed: %v", err)
	}
	wantIn(t, "cert-manager with SOPS_AGE_KEY_FILE", out, "draw: draw.main.secret.example")

	if _, _, err := buildKs(t, root, "cert-manager", app, "--cluster", "main", "--strict", "--age-key-file", os.DevNull); err == nil {
		t.Error("an empty --age-key-file: want an error")
	}
}

// Item 4: each cluster reads its own cluster-info, never another's.
func TestBuildKsReadsOnlyItsOwnClustersConfigMaps(t *testing.T) {
	root, key := multicluster(t)
	for _, c := range clusters {
		out, _, err := buildKs(t, root, "cert-manager", "kubernetes/apps/cert-manager/app", "--cluster", c, "--age-key-file", key)
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
}

// Item 5: bootstrap templates (op://) are outside every sync root's
// reach: never values.
func TestBuildKsTakesNoValueFromFilesNoClusterApplies(t *testing.T) {
	root, _ := multicluster(t)
	for _, c := range clusters {
		out, _, err := buildKs(t, root, "echo", "kubernetes/apps/echo/overlays/"+c)
		if err != nil {
			t.Fatalf("echo of %s: %v", c, err)
		}
		wantNotIn(t, "echo of "+c, out, "op://")
		out, _, err = buildKs(t, root, "cert-manager", "kubernetes/apps/cert-manager/app", "--cluster", c)
		if err != nil {
			t.Fatalf("cert-manager of %s: %v", c, err)
		}
		wantNotIn(t, "cert-manager of "+c, out, "op://")
	}
}

// Item 6: every object carries the labels the controller applies.
func TestBuildKsPrintsTheOwnerLabels(t *testing.T) {
	root, _ := multicluster(t)
	out, _, err := buildKs(t, root, "echo", "kubernetes/apps/echo/overlays/main")
	if err != nil {
		t.Fatal(err)
	}
	wantIn(t, "echo", out, "kustomize.toolkit.fluxcd.io/name: echo", "kustomize.toolkit.fluxcd.io/namespace: flux-system")
}

// The multi-cluster repository: every Kustomization builds, each with its
// own cluster's values, none with ciphertext or a template's value.
func TestBuildKsBuildsEveryKustomizationOfAMultiClusterRepository(t *testing.T) {
	root, key := multicluster(t)
	for _, c := range clusters {
		platform := filepath.Join(root, "kubernetes", "clusters", c, "apps", "platform")
		for _, tc := range []struct{ name, file, path string }{
			{"cert-manager", filepath.Join(platform, "cert-manager.yaml"), "kubernetes/apps/cert-manager/app"},
			{"echo", filepath.Join(platform, "echo.yaml"), "kubernetes/apps/echo/overlays/" + c},
			{"podinfo", filepath.Join(root, "kubernetes", "apps", "base", "podinfo", "ks.yaml"), "kubernetes/apps/base/podinfo/app"},
		} {
			out, _, err := buildKs(t, root, tc.name, tc.path, "--kustomization-file", tc.file, "--age-key-file", key)
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
