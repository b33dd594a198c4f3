package kustomize_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestServiceAccountLimitsWhatIsApplied(t *testing.T) {
	f := newFixture(t, map[string]string{
		"allowed/cm.yaml":    fmt.Sprintf(configMap, "cm", "1"),
		"forbidden/dep.yaml": fmt.Sprintf(deployment, "web"),
		"forbidden/cm2.yaml": fmt.Sprintf(configMap, "cm2", "1"),
	})
	ctx := context.Background()
	// The tenant may manage ConfigMaps in its namespace, nothing else.
	for _, o := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "tenant"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "configmaps"}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"},
		}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "tenant"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "configmaps"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "tenant", Namespace: f.ns}}},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	asTenant := func(k *kustomizev1.Kustomization) { k.Spec.ServiceAccountName = "tenant" }
	allowed := f.kustomization("allowed", "./allowed", asTenant)
	forbidden := f.kustomization("forbidden", "./forbidden", asTenant)
	f.waitApplied(allowed, f.revision())
	got := f.waitReason(forbidden, meta.ReconciliationFailedReason)
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	if !strings.Contains(msg, "forbidden") || !strings.Contains(msg, "system:serviceaccount:"+f.ns+":tenant") || !strings.Contains(msg, "deployments") {
		t.Errorf("a forbidden write should name the account and the resource: %q", msg)
	}
}
