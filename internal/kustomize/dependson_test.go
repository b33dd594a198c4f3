package kustomize_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
)

func dependsOn(names ...string) func(*kustomizev1.Kustomization) {
	return func(k *kustomizev1.Kustomization) {
		for _, n := range names {
			k.Spec.DependsOn = append(k.Spec.DependsOn, meta.DependencyReference{Name: n})
		}
	}
}

func TestDependentStartsAsSoonAsItsDependencyIsReady(t *testing.T) {
	f := newFixture(t, map[string]string{
		"base/deploy.yaml": fmt.Sprintf(deployment, "base"),
		"app/cm.yaml":      fmt.Sprintf(configMap, "app", "1"),
	})
	rev := f.revision()
	app := f.kustomization("app", "./app", dependsOn("base"))
	got := f.waitReason(app, meta.DependencyNotReadyReason)
	if msg := conditions.GetMessage(got, meta.ReadyCondition); msg != "dependency '"+f.ns+"/base' not found" {
		t.Errorf("missing dependency message %q", msg)
	}

	base := f.kustomization("base", "./base", func(k *kustomizev1.Kustomization) { k.Spec.Wait = true })
	baseReady := f.waitApplied(base, rev)
	appReady := f.waitApplied(app, rev)
	readyAt := conditions.GetLastTransitionTime(baseReady, meta.ReadyCondition).Time
	appAt := conditions.GetLastTransitionTime(appReady, meta.ReadyCondition).Time
	t.Logf("dependent Ready %s after its dependency", appAt.Sub(readyAt))
	// Flux would wait --requeue-dependency (30s) here; nothing may poll.
	if appAt.Sub(readyAt) > 10*time.Second {
		t.Errorf("the dependent became Ready %s after its dependency: it was not queued by the event", appAt.Sub(readyAt))
	}
}

func TestDependencyCycleIsReportedAndOthersProceed(t *testing.T) {
	f := newFixture(t, map[string]string{
		"a/cm.yaml":     fmt.Sprintf(configMap, "a", "1"),
		"b/cm.yaml":     fmt.Sprintf(configMap, "b", "1"),
		"c/cm.yaml":     fmt.Sprintf(configMap, "c", "1"),
		"other/cm.yaml": fmt.Sprintf(configMap, "other", "1"),
	})
	a := f.kustomization("a", "./a", dependsOn("c"))
	f.kustomization("b", "./b", dependsOn("a"))
	f.kustomization("c", "./c", dependsOn("b"))
	other := f.kustomization("other", "./other", nil)

	f.waitApplied(other, f.revision())
	got := f.wait(a, 60*time.Second, "to stall on the cycle", func(k *kustomizev1.Kustomization) bool {
		return conditions.IsStalled(k)
	})
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	if !strings.Contains(msg, "a -> c -> b -> a") {
		t.Errorf("cycle message %q does not spell the cycle a -> c -> b -> a", msg)
	}
}
