package cli

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// annotated gives a GitRepository what tools set on it at run time, beside
// a label and an annotation of its author's.
func annotated(r *sourcev1.GitRepository) {
	r.Labels = map[string]string{"team": "payments"}
	r.Annotations = map[string]string{
		"kubectl.kubernetes.io/last-applied-configuration": `{"big":"json"}`,
		meta.ReconcileRequestAnnotation:                    "2026-01-01T00:00:00Z",
		"example.com/owner":                                "jane",
	}
	r.ResourceVersion = "42"
	r.UID = "0b6e3c2a"
}

func withSecret(name string) repoOption {
	return func(r *sourcev1.GitRepository) { r.Spec.SecretRef = &meta.LocalObjectReference{Name: name} }
}

const podinfoExport = `---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  annotations:
    example.com/owner: jane
  labels:
    team: payments
  name: podinfo
  namespace: flux-system
spec:
  interval: 1m0s
  url: https://git.example.com/podinfo.git
`

func TestExportPrintsACleanManifest(t *testing.T) {
	fakeCluster(t, gitRepo("podinfo", stored, annotated))

	out, _, err := weir(t, "export", "source", "git", "podinfo")
	if err != nil {
		t.Fatal(err)
	}

	if out != podinfoExport {
		t.Errorf("got\n%s\nwant\n%s", out, podinfoExport)
	}
}

func TestExportAll(t *testing.T) {
	fakeCluster(t, gitRepo("podinfo", stored, annotated), gitRepo("other"), gitRepo("elsewhere", inNamespace("apps")))

	out, _, err := weir(t, "export", "source", "git", "--all")
	if err != nil {
		t.Fatal(err)
	}

	docs := strings.Split(strings.TrimPrefix(out, "---\n"), "---\n")
	if len(docs) != 2 || !strings.Contains(docs[0], "name: other\n") || "---\n"+docs[1] != podinfoExport {
		t.Errorf("want other then podinfo, got\n%s", out)
	}

	_, _, err = weir(t, "export", "kustomization", "--all")
	if err == nil || err.Error() != "no Kustomization objects found in flux-system namespace" {
		t.Errorf("export of none: err = %v", err)
	}
	if _, _, err := weir(t, "export", "source", "git", "missing"); err == nil || err.Error() != "GitRepository flux-system/missing not found" {
		t.Errorf("export of a missing object: err = %v", err)
	}
	if _, _, err := weir(t, "export", "source", "git"); err == nil || err.Error() != "source git name is required" {
		t.Errorf("export without a name: err = %v", err)
	}
}

func TestExportWithCredentials(t *testing.T) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "git-auth", Namespace: "flux-system", ResourceVersion: "7", Labels: map[string]string{"x": "y"}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"username": []byte("git"), "password": []byte("s3cret")},
	}
	fakeCluster(t, gitRepo("podinfo", withSecret("git-auth")), gitRepo("mirror", withSecret("git-auth")), secret)

	out, _, err := weir(t, "export", "source", "git", "podinfo", "--with-credentials")
	if err != nil {
		t.Fatal(err)
	}

	want := `---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  interval: 1m0s
  secretRef:
    name: git-auth
  url: https://git.example.com/podinfo.git
---
apiVersion: v1
data:
  password: czNjcmV0
  username: Z2l0
kind: Secret
metadata:
  name: git-auth
  namespace: flux-system
type: Opaque
`
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}

	// Without the flag, no Secret; with --all, a Secret two sources share once.
	if out, _, _ := weir(t, "export", "source", "git", "podinfo"); strings.Contains(out, "Secret") {
		t.Errorf("the Secret printed without --with-credentials:\n%s", out)
	}
	out, _, err = weir(t, "export", "source", "git", "--all", "--with-credentials")
	if err != nil || strings.Count(out, "kind: Secret\n") != 1 || strings.Count(out, "kind: GitRepository\n") != 2 {
		t.Errorf("--all --with-credentials: err = %v, printed\n%s", err, out)
	}

	// A Secret that is missing fails the export and prints nothing.
	fakeCluster(t, gitRepo("podinfo", withSecret("gone")))
	out, _, err = weir(t, "export", "source", "git", "podinfo", "--with-credentials")
	if err == nil || !strings.Contains(err.Error(), "reading Secret flux-system/gone for --with-credentials") || out != "" {
		t.Errorf("a missing Secret: err = %v, printed %q", err, out)
	}
}
