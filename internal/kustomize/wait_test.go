package kustomize_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestWaitNeverReportsABrokenChangeAsReady changes a healthy Deployment of
// a Kustomization with wait: true into one that cannot roll out (its new
// pods fit no node), several times over. Right after the apply, the
// health cache may still hold the Deployment from before, whose rollout
// was complete: the broken revision must never turn Ready, and the
// Kustomization that depends on it must never apply it.
func TestWaitNeverReportsABrokenChangeAsReady(t *testing.T) {
	good := fmt.Sprintf(deployment, "web")
	broken := strings.Replace(good, "    spec:\n", "    spec:\n      nodeSelector: {no-such-node: \"true\"}\n", 1)
	// The dependent's objects are named after the round, and kept when
	// they leave the source, so that an apply of a broken round shows.
	after := func(name string) string {
		return strings.Replace(fmt.Sprintf(configMap, name, "1"), "metadata:\n", "metadata:\n  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n", 1)
	}
	f := newFixture(t, map[string]string{
		"base/deploy.yaml": good,
		"app/cm.yaml":      after("after-good-0"),
	})
	base := f.kustomization("base", "./base", func(k *kustomizev1.Kustomization) {
		k.Spec.Wait = true
		k.Spec.Timeout = &metav1.Duration{Duration: 2 * time.Minute}
	})
	app := f.kustomization("app", "./app", dependsOn("base"))
	rev := f.revision()
	f.waitApplied(base, rev)
	f.waitApplied(app, rev)

	const rounds = 5
	for i := 1; i <= rounds; i++ {
		bad := f.commit(map[string]string{
			"base/deploy.yaml": broken,
			"app/cm.yaml":      after(fmt.Sprintf("after-broken-%d", i)),
		}, fmt.Sprintf("round %d: break the Deployment", i))
		// The broken revision has been applied once its reconcile is over:
		// it then either waits for the rollout or (the bug) says Ready.
		got := f.wait(base, 2*time.Minute, "to apply "+bad, func(k *kustomizev1.Kustomization) bool {
			return k.Status.LastAttemptedRevision == bad && conditions.Has(k, meta.HealthyCondition) &&
				(conditions.IsUnknown(k, meta.HealthyCondition) || k.Status.LastAppliedRevision == bad)
		})
		if got.Status.LastAppliedRevision == bad || conditions.IsTrue(got, meta.HealthyCondition) {
			t.Fatalf("round %d: a Deployment that cannot roll out was reported healthy: %s", i, describe(got))
		}
		fixed := f.commit(map[string]string{
			"base/deploy.yaml": good,
			"app/cm.yaml":      after(fmt.Sprintf("after-good-%d", i)),
		}, fmt.Sprintf("round %d: fix the Deployment", i))
		f.waitApplied(base, fixed)
		f.waitApplied(app, fixed)
	}

	var cms corev1.ConfigMapList
	if err := env.Client.List(context.Background(), &cms, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		if strings.HasPrefix(cm.Name, "after-broken-") {
			t.Errorf("the dependent was applied on a broken dependency: %s exists", cm.Name)
		}
	}
}
