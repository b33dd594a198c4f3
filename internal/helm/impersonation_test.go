package helm_test

import (
	"context"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestServiceAccountActsForTheRelease installs as spec.serviceAccountName:
// without rights the install is refused, naming the account; with a Role
// over the namespace it installs, and drift detection corrects a hand edit
// acting as that account too.
func TestServiceAccountActsForTheRelease(t *testing.T) {
	f := newFixture(t, "1.0.0")
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "deployer"}}); err != nil {
		t.Fatal(err)
	}
	hr := f.release("as-sa", "", func(h *helmv2.HelmRelease) {
		h.Spec.ServiceAccountName = "deployer"
		h.Spec.DriftDetection = &helmv2.DriftDetection{Mode: helmv2.DriftDetectionEnabled}
	})
	f.wait(hr, 60*time.Second, "to be refused as the service account", func(h *helmv2.HelmRelease) bool {
		msg := conditions.GetMessage(h, meta.ReadyCondition)
		return conditions.IsFalse(h, meta.ReadyCondition) && contains(msg, "system:serviceaccount:"+f.ns+":deployer") && contains(msg, "forbidden")
	})
	if n := len(helmReleases(t, f.ns)); n != 0 {
		// The Secret write itself is what is refused.
		t.Errorf("a release was stored without rights: %d", n)
	}

	for _, o := range []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "deployer"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "deployer"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "deployer"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.ns, Name: "deployer"}}},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	annotate(t, hr, meta.ReconcileRequestAnnotation)
	f.waitReady(hr, "1.0.0")

	dep := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: f.ns, Name: "as-sa"}
	if err := env.Client.Get(ctx, key, dep); err != nil {
		t.Fatal(err)
	}
	three := int32(3)
	dep.Spec.Replicas = &three
	if err := env.Client.Update(ctx, dep, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	annotate(t, hr, meta.ReconcileRequestAnnotation)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := env.Client.Get(ctx, key, dep); err == nil && *dep.Spec.Replicas == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hand edit was not corrected as the service account: replicas %d", *dep.Spec.Replicas)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, mf := range dep.ManagedFields {
		if mf.Manager == "kubectl-edit" && mf.Operation == metav1.ManagedFieldsOperationUpdate && contains(string(mf.FieldsV1.Raw), "replicas") {
			t.Errorf("kubectl-edit still owns spec.replicas after the correction")
		}
	}
}
