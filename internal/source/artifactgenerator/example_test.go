package artifactgenerator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

// exampleRepo is shaped like fluxcd/flux2-kustomize-helm-example:
// clusters/staging holds the ArtifactGenerator that splits the repository
// into an "infrastructure" and an "apps" ExternalArtifact and the
// Kustomizations that apply them (infra-controllers, then infra-configs,
// then apps, by dependsOn); infrastructure/ and apps/ hold the manifests.
func exampleRepo(ns string) map[string]string {
	cm := func(name, value string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  value: %q\n", name, value)
	}
	ks := func(name, artifact, path, dependsOn string) string {
		s := fmt.Sprintf(`---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: %s
  namespace: %s
spec:
  interval: 1h
  retryInterval: 2m
  timeout: 1m
  sourceRef:
    kind: ExternalArtifact
    name: %s
  path: %s
  prune: true
  wait: true
  targetNamespace: %s
`, name, ns, artifact, path, ns)
		if dependsOn != "" {
			s += "  dependsOn:\n    - name: " + dependsOn + "\n"
		}
		return s
	}
	return map[string]string{
		"clusters/staging/artifacts.yaml": fmt.Sprintf(`---
apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata:
  name: flux-system
  namespace: %s
spec:
  sources:
    - alias: monorepo
      kind: GitRepository
      name: repo
  artifacts:
    - name: infrastructure
      originRevision: "@monorepo"
      copy:
        - from: "@monorepo/infrastructure/**"
          to: "@artifact/"
    - name: apps
      originRevision: "@monorepo"
      copy:
        - from: "@monorepo/apps/base/**"
          to: "@artifact/base/"
        - from: "@monorepo/apps/staging/**"
          to: "@artifact/staging/"
`, ns),
		"clusters/staging/infrastructure.yaml": ks("infra-controllers", "infrastructure", "./controllers", "") +
			ks("infra-configs", "infrastructure", "./configs", "infra-controllers"),
		"clusters/staging/apps.yaml":                    ks("apps", "apps", "./staging", "infra-configs"),
		"infrastructure/controllers/kustomization.yaml": "resources:\n  - controller.yaml\n",
		"infrastructure/controllers/controller.yaml":    cm("controller", "v1"),
		"infrastructure/configs/kustomization.yaml":     "resources:\n  - issuer.yaml\n",
		"infrastructure/configs/issuer.yaml":            cm("issuer", "staging"),
		"apps/base/podinfo/kustomization.yaml":          "resources:\n  - podinfo.yaml\n",
		"apps/base/podinfo/podinfo.yaml":                cm("podinfo", "base"),
		"apps/staging/kustomization.yaml":               "resources:\n  - ../base/podinfo\npatches:\n  - path: podinfo-values.yaml\n",
		"apps/staging/podinfo-values.yaml":              cm("podinfo", "staging-1"),
	}
}

// The official example's shape converges: the flux-system Kustomization
// applies the generator and the Kustomizations, the generator splits the
// repository into two ExternalArtifacts, and the three Kustomizations
// apply them in dependsOn order. A commit that touches only apps/ gives a
// new apps artifact and leaves the infrastructure artifact as it was: its
// Kustomizations are not applied again (a hand edit of what they applied
// stays), while apps applies the commit at once.
func TestExampleRepositoryConverges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, map[string]string{"README.md": "the example\n"})
	f.commit(exampleRepo(f.ns), "the example")
	root := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "flux-system"},
		Spec: kustomizev1.KustomizationSpec{
			Interval:  metav1.Duration{Duration: time.Hour},
			Path:      "./clusters/staging",
			Prune:     true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"},
		},
	}
	if err := env.Client.Create(ctx, root); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	for _, name := range []string{"infra-controllers", "infra-configs", "apps"} {
		waitKustomization(t, f.ns, name, func(k *kustomizev1.Kustomization) bool {
			return conditions.IsReady(k) && k.Status.LastAppliedRevision != ""
		})
	}
	t.Logf("the example converged in %s", time.Since(start).Round(time.Millisecond))
	if got := configMapValue(t, f.ns, "podinfo"); got != "staging-1" {
		t.Fatalf("podinfo holds %q, want the staging patch's value", got)
	}

	ag := f.waitReady(&swapi.ArtifactGenerator{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "flux-system"}})
	if len(ag.Status.Inventory) != 2 || ag.Status.Inventory[0].Name != "infrastructure" || ag.Status.Inventory[1].Name != "apps" {
		t.Fatalf("inventory %+v, want infrastructure and apps", ag.Status.Inventory)
	}
	if msg := conditions.GetMessage(ag, meta.ReadyCondition); msg != "reconciliation succeeded, generated 2 artifact(s)" {
		t.Errorf("Ready message %q", msg)
	}
	infra, infraFiles := f.waitArtifact("infrastructure", anyArtifact)
	if infra.Status.Artifact.Revision != "latest@"+infra.Status.Artifact.Digest {
		t.Errorf("infrastructure revision %s, want latest@<its digest>", infra.Status.Artifact.Revision)
	}
	if _, ok := infraFiles["controllers/controller.yaml"]; !ok || len(infraFiles) != 4 {
		t.Errorf("infrastructure holds %s; want the contents of infrastructure/", names(infraFiles))
	}
	if infra.Spec.SourceRef == nil || infra.Spec.SourceRef.Kind != swapi.ArtifactGeneratorKind || infra.Spec.SourceRef.Name != "flux-system" {
		t.Errorf("infrastructure sourceRef %+v, want the generator", infra.Spec.SourceRef)
	}
	if infra.Labels[swapi.ArtifactGeneratorLabel] != string(ag.UID) {
		t.Errorf("infrastructure labels %v, want the generator's UID", infra.Labels)
	}
	_, appsFiles := f.waitArtifact("apps", anyArtifact)
	if _, ok := appsFiles["base/podinfo/podinfo.yaml"]; !ok {
		t.Errorf("apps holds %s; want base/ and staging/", names(appsFiles))
	}
	appsBefore := f.externalArtifact("apps").Status.Artifact

	// A hand edit of what infra-controllers applied: a re-apply would
	// revert it.
	editConfigMap(t, f.ns, "controller", "edited by hand")
	infraKs := map[string]*kustomizev1.Kustomization{}
	for _, name := range []string{"infra-controllers", "infra-configs"} {
		infraKs[name] = getKustomization(t, f.ns, name)
	}

	rev := f.commit(map[string]string{"apps/staging/podinfo-values.yaml": strings.Replace(exampleRepo(f.ns)["apps/staging/podinfo-values.yaml"], "staging-1", "staging-2", 1)}, "apps only")
	start = time.Now()
	apps, _ := f.waitArtifact("apps", func(a *meta.Artifact) bool { return a.Digest != appsBefore.Digest })
	if got := apps.Status.Artifact.Metadata[swapi.ArtifactOriginRevisionAnnotation]; got != rev {
		t.Errorf("apps origin revision %q, want the commit %s", got, rev)
	}
	waitKustomization(t, f.ns, "apps", func(k *kustomizev1.Kustomization) bool {
		return conditions.IsReady(k) && k.Status.LastAppliedRevision == apps.Status.Artifact.Revision
	})
	t.Logf("the apps commit was applied %s after the GitRepository was asked to fetch it", time.Since(start).Round(time.Millisecond))
	if got := configMapValue(t, f.ns, "podinfo"); got != "staging-2" {
		t.Fatalf("podinfo holds %q after the commit, want staging-2", got)
	}

	after := f.externalArtifact("infrastructure").Status.Artifact
	if after.Revision != infra.Status.Artifact.Revision || after.Digest != infra.Status.Artifact.Digest ||
		after.Path != infra.Status.Artifact.Path || !after.LastUpdateTime.Equal(&infra.Status.Artifact.LastUpdateTime) {
		t.Errorf("the infrastructure artifact changed: %+v, was %+v", after, infra.Status.Artifact)
	}
	if got := after.Metadata[swapi.ArtifactOriginRevisionAnnotation]; got != rev {
		t.Errorf("infrastructure origin revision %q, want the latest commit %s", got, rev)
	}
	time.Sleep(2 * time.Second) // a Kustomization queued by mistake would act within this
	if got := configMapValue(t, f.ns, "controller"); got != "edited by hand" {
		t.Errorf("infra-controllers applied again: the hand edit was reverted to %q", got)
	}
	for name, before := range infraKs {
		now := getKustomization(t, f.ns, name)
		if now.Status.LastAppliedRevision != before.Status.LastAppliedRevision || now.ResourceVersion != before.ResourceVersion {
			t.Errorf("Kustomization %s changed: applied %s (was %s)", name, now.Status.LastAppliedRevision, before.Status.LastAppliedRevision)
		}
	}
}

func getKustomization(t *testing.T, ns, name string) *kustomizev1.Kustomization {
	t.Helper()
	k := &kustomizev1.Kustomization{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
		t.Fatal(err)
	}
	return k
}

func waitKustomization(t *testing.T, ns, name string, cond func(*kustomizev1.Kustomization) bool) *kustomizev1.Kustomization {
	t.Helper()
	k := &kustomizev1.Kustomization{}
	testenv.WaitFor(t, 90*time.Second, func() string {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
			return err.Error()
		}
		if cond(k) {
			return ""
		}
		return fmt.Sprintf("Kustomization %s: %s applied %q", name, describe(k.Status.Conditions), k.Status.LastAppliedRevision)
	})
	return k
}

func configMapValue(t *testing.T, ns, name string) string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data["value"]
}

func editConfigMap(t *testing.T, ns, name, value string) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data["value"] = value
	if err := env.Client.Patch(context.Background(), cm, patch, client.FieldOwner("someone")); err != nil {
		t.Fatal(err)
	}
}
