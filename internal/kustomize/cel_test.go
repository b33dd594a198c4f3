package kustomize_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// phaseCheck judges ConfigMaps by their data.phase, the way users judge
// custom resources that kstatus does not understand.
var phaseCheck = kustomize.CustomHealthCheck{
	APIVersion: "v1",
	Kind:       "ConfigMap",
	HealthCheckExpressions: kustomize.HealthCheckExpressions{
		Current: "data.phase == 'done'",
		Failed:  "data.phase == 'broken'",
	},
}

func setPhase(t *testing.T, ns, name, phase string) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["phase"] = phase
	if err := env.Client.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
}

const phaseConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
data:
  phase: pending
`

func TestHealthCheckExprsJudgeCustomStatus(t *testing.T) {
	f := newFixture(t, map[string]string{
		"ok/cm.yaml":     fmt.Sprintf(phaseConfigMap, "job-ok"),
		"broken/cm.yaml": fmt.Sprintf(phaseConfigMap, "job-broken"),
	})
	withExprs := func(k *kustomizev1.Kustomization) {
		k.Spec.Wait = true
		k.Spec.HealthCheckExprs = []kustomize.CustomHealthCheck{phaseCheck}
		k.Spec.Timeout = &metav1.Duration{Duration: 2 * time.Minute}
	}
	ok := f.kustomization("ok", "./ok", withExprs)
	broken := f.kustomization("broken", "./broken", withExprs)
	rev := f.revision()

	waiting := f.wait(ok, 30*time.Second, "to wait on the expression", func(k *kustomizev1.Kustomization) bool {
		return conditions.IsReconciling(k) && strings.Contains(conditions.GetMessage(k, meta.ReadyCondition), "ConfigMap/"+f.ns+"/job-ok")
	})
	if conditions.IsReady(waiting) {
		t.Fatalf("Ready while data.phase is pending: %s", describe(waiting))
	}
	setPhase(t, f.ns, "job-ok", "done")
	f.waitApplied(ok, rev)

	f.wait(broken, 30*time.Second, "to be applied", func(k *kustomizev1.Kustomization) bool { return k.Status.Inventory != nil })
	setPhase(t, f.ns, "job-broken", "broken")
	got := f.waitReason(broken, meta.HealthCheckFailedReason)
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "job-broken") || !strings.Contains(msg, "Failed") {
		t.Errorf("the failure does not name the object and its status: %q", msg)
	}
}

func TestInvalidHealthCheckExprStalls(t *testing.T) {
	f := newFixture(t, map[string]string{"app/cm.yaml": fmt.Sprintf(phaseConfigMap, "cm")})
	ks := f.kustomization("bad-expr", "./app", func(k *kustomizev1.Kustomization) {
		k.Spec.Wait = true
		k.Spec.HealthCheckExprs = []kustomize.CustomHealthCheck{{APIVersion: "v1", Kind: "ConfigMap",
			HealthCheckExpressions: kustomize.HealthCheckExpressions{Current: "data.phase == "}}}
	})
	got := f.waitReason(ks, meta.InvalidCELExpressionReason)
	if !conditions.IsStalled(got) {
		t.Errorf("an expression that cannot compile should stall: %s", describe(got))
	}
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "healthCheckExprs[0]") {
		t.Errorf("the message does not point at the expression: %q", msg)
	}
}

func TestReadyExprReplacesTheReadyCheck(t *testing.T) {
	f := newFixture(t, map[string]string{"app/cm.yaml": fmt.Sprintf(configMap, "cm", "x")})
	// The dependency never becomes Ready: its path does not exist.
	f.kustomization("db", "./missing", nil)
	byName := f.kustomization("by-name", "./app", func(k *kustomizev1.Kustomization) {
		k.Spec.NamePrefix = "by-name-"
		k.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: "db", ReadyExpr: "dep.metadata.name == 'db'"}}
	})
	byLabel := f.kustomization("by-label", "./app", func(k *kustomizev1.Kustomization) {
		k.Spec.NamePrefix = "by-label-"
		k.Spec.RetryInterval = &metav1.Duration{Duration: time.Second}
		k.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: "db",
			ReadyExpr: "has(dep.metadata.labels) && 'migrated' in dep.metadata.labels && dep.metadata.labels['migrated'] == self.metadata.name"}}
	})
	rev := f.revision()
	f.waitApplied(byName, rev)

	got := f.waitReason(byLabel, meta.DependencyNotReadyReason)
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "readyExpr") {
		t.Errorf("message %q does not say the readyExpr holds it", msg)
	}
	db := &kustomizev1.Kustomization{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "db"}, db); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(db.DeepCopy())
	db.Labels = map[string]string{"migrated": "by-label"}
	if err := env.Client.Patch(context.Background(), db, patch); err != nil {
		t.Fatal(err)
	}
	f.waitApplied(byLabel, rev)
}

func TestKubectlFieldsAreTakenOverUnlessMerge(t *testing.T) {
	const annotated = `apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
  annotations:
    kustomize.toolkit.fluxcd.io/ssa: "%s"
data:
  key: from-git
`
	f := newFixture(t, map[string]string{
		"app/plain.yaml":  fmt.Sprintf(configMap, "plain", "from-git"),
		"app/merge.yaml":  fmt.Sprintf(annotated, "merge", "Merge"),
		"app/ignore.yaml": fmt.Sprintf(annotated, "ignore", "Ignore"),
	})
	// Objects that kubectl created before the move to GitOps.
	for _, name := range []string{"plain", "merge", "ignore"} {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
			Data:       map[string]string{"key": "by-kubectl", "extra": "by-kubectl"},
		}
		if err := env.Client.Create(context.Background(), cm, client.FieldOwner("kubectl")); err != nil {
			t.Fatal(err)
		}
	}
	ks := f.kustomization("app", "./app", nil)
	f.waitApplied(ks, f.revision())

	data := func(name string) map[string]string {
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, cm); err != nil {
			t.Fatal(err)
		}
		return cm.Data
	}
	if d := data("plain"); d["key"] != "from-git" || d["extra"] != "" {
		t.Errorf("plain: kubectl's fields were not taken over: %v", d)
	}
	if d := data("merge"); d["key"] != "from-git" || d["extra"] != "by-kubectl" {
		t.Errorf("ssa: Merge: want Git's key and kubectl's extra kept, got %v", d)
	}
	if d := data("ignore"); d["key"] != "by-kubectl" {
		t.Errorf("ssa: Ignore: the object was changed: %v", d)
	}
}
