package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/localcluster"
)

// weir check on the test cluster: the version and the CRDs pass; a
// Kustomization that decrypts with a missing sops-age Secret and an ssh://
// GitRepository without its deploy key fail, naming the fix, until the
// Secrets are there. No weir holds a leader lease here (the test manager
// runs without leader election), which check reports too.
func TestCheck(t *testing.T) {
	out := mustRunWeir(t, "check", "--pre")
	if want := "✔ Kubernetes " + strings.TrimPrefix(localcluster.KubernetesVersion, "v") + " >=1.32.0"; !strings.Contains(out, want) ||
		!strings.Contains(out, "✔ prerequisites checks passed") {
		t.Errorf("weir check --pre printed\n%s\nwant %q", out, want)
	}

	ns := env.Namespace(t)
	ctx := context.Background()
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secrets"},
		Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: time.Hour}, Path: "./secrets", Suspend: true,
			SourceRef:  kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "home-ops"},
			Decryption: &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}},
		},
	}
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "home-ops"},
		Spec: sourcev1.GitRepositorySpec{URL: "ssh://git@github.com/owner/home-ops", Interval: metav1.Duration{Duration: time.Hour}, Suspend: true,
			SecretRef: &meta.LocalObjectReference{Name: "github-deploy-key"}},
	}
	if err := env.Client.Create(ctx, ks); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, repo); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runWeir(t, "check")
	if code != 1 {
		t.Errorf("weir check with missing Secrets exited %d, want 1", code)
	}
	for _, want := range []string{
		"✔ gitrepositories.source.toolkit.fluxcd.io/v1",
		"✔ kustomizations.kustomize.toolkit.fluxcd.io/v1",
		"✗ " + ns + "/sops-age: not found; Kustomizations secrets cannot decrypt",
		"✗ GitRepository " + ns + "/home-ops: deploy key " + ns + "/github-deploy-key: not found",
		"✗ no weir runs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("weir check printed\n%s\nwant a line with %q", out, want)
		}
	}
	if !strings.Contains(stderr, "checks failed") {
		t.Errorf("stderr %q, want the number of failed checks", stderr)
	}

	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-age"}, StringData: map[string]string{"age.agekey": "# created: 2026-12-02\nAGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "github-deploy-key"}, StringData: map[string]string{"identity": "key", "known_hosts": "github.com ssh-ed25519 AAAA"}},
	} {
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	_, out, _ = runWeir(t, "check")
	for _, want := range []string{
		"✔ " + ns + "/sops-age: age key for Kustomizations secrets",
		"✔ GitRepository " + ns + "/home-ops: deploy key " + ns + "/github-deploy-key",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("weir check with the Secrets printed\n%s\nwant a line with %q", out, want)
		}
	}
	if strings.Contains(out, "AGE-SECRET-KEY") {
		t.Errorf("weir check printed the age key:\n%s", out)
	}
}
