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
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

// TestKubeConfigAppliesToTheRemoteCluster runs Kustomizations whose
// spec.kubeConfig names a second control plane: what they apply, prune,
// check and delete is there and not here; their status stays here.
func TestKubeConfigAppliesToTheRemoteCluster(t *testing.T) {
	remote := testenv.StartRemote(t, false)
	ctx := context.Background()

	t.Run("apply, health, drift, prune and deletion happen in the remote cluster", func(t *testing.T) {
		f := newFixture(t, map[string]string{
			"app/a.yaml": fmt.Sprintf(configMap, "a", "1"),
			"app/b.yaml": fmt.Sprintf(configMap, "b", "1"),
		})
		remote.Namespace(t, f.ns)
		env.KubeconfigSecret(t, f.ns, "prod-kubeconfig", "value", remote.Kubeconfig)
		ks := f.kustomization("remote", "./app", func(k *kustomizev1.Kustomization) {
			k.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "prod-kubeconfig"}}
			// Waiting reads the objects' health: only the remote
			// cluster has them.
			k.Spec.Wait = true
		})
		// A Kustomization of this cluster that depends on the remote one.
		after := f.kustomization("after", "./app", func(k *kustomizev1.Kustomization) {
			k.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: "remote"}}
			k.Spec.NamePrefix = "local-"
		})
		rev := f.revision()
		got := f.waitApplied(ks, rev)
		if !conditions.IsTrue(got, meta.HealthyCondition) {
			t.Errorf("want Healthy=True from the remote objects' health: %s", describe(got))
		}
		if got.Status.Inventory == nil || len(got.Status.Inventory.Entries) != 2 {
			t.Errorf("the inventory in the home status should list the 2 remote objects: %+v", got.Status.Inventory)
		}
		for _, name := range []string{"a", "b"} {
			if err := remote.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, &corev1.ConfigMap{}); err != nil {
				t.Errorf("ConfigMap %s is not in the remote cluster: %v", name, err)
			}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
				t.Errorf("ConfigMap %s was applied to the home cluster (%v)", name, err)
			}
		}
		f.waitApplied(after, rev)
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "local-a"}, &corev1.ConfigMap{}); err != nil {
			t.Errorf("the home Kustomization that depends on the remote one did not apply here: %v", err)
		}

		// A hand edit in the remote cluster is corrected there.
		a := &corev1.ConfigMap{}
		if err := remote.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "a"}, a); err != nil {
			t.Fatal(err)
		}
		a.Data["key"] = "edited"
		if err := remote.Client.Update(ctx, a); err != nil {
			t.Fatal(err)
		}
		requestReconcile(t, ks)
		waitRemote(t, remote, f.ns, "a", "drift to be corrected", func(cm *corev1.ConfigMap, err error) bool {
			return err == nil && cm.Data["key"] == "1"
		})

		// An object removed from Git is pruned there.
		rev = f.commit(map[string]string{"app/b.yaml": ""}, "remove b")
		f.waitApplied(ks, rev)
		waitRemote(t, remote, f.ns, "b", "b to be pruned", func(_ *corev1.ConfigMap, err error) bool { return apierrors.IsNotFound(err) })

		// Deleting the Kustomization deletes its objects there.
		if err := env.Client.Delete(ctx, ks); err != nil {
			t.Fatal(err)
		}
		waitRemote(t, remote, f.ns, "a", "a to be deleted with the Kustomization", func(_ *corev1.ConfigMap, err error) bool { return apierrors.IsNotFound(err) })
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(ks), &kustomizev1.Kustomization{})
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the Kustomization is still there after its objects were deleted (%v)", err)
			}
		}
	})

	t.Run("the service account is impersonated in the remote cluster", func(t *testing.T) {
		f := newFixture(t, map[string]string{"app/a.yaml": fmt.Sprintf(configMap, "a", "1")})
		remote.Namespace(t, f.ns)
		env.KubeconfigSecret(t, f.ns, "prod-kubeconfig", "value.yaml", remote.Kubeconfig)
		ks := f.kustomization("tenant", "./app", func(k *kustomizev1.Kustomization) {
			k.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "prod-kubeconfig"}}
			k.Spec.ServiceAccountName = "tenant"
		})
		got := f.waitReason(ks, meta.ReconciliationFailedReason)
		if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "system:serviceaccount:"+f.ns+":tenant") || !strings.Contains(msg, "forbidden") {
			t.Errorf("without rights in the remote cluster the apply should be refused naming the account: %q", msg)
		}
		// Rights in the remote cluster only: the service account need not
		// exist there, the user name is what RBAC binds.
		for _, o := range []client.Object{
			&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "configmaps"}, Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}}}},
			&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "tenant"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "configmaps"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccount:" + f.ns + ":tenant"}}},
		} {
			if err := remote.Client.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		requestReconcile(t, ks)
		f.waitApplied(ks, f.revision())
		cm := &corev1.ConfigMap{}
		if err := remote.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "a"}, cm); err != nil {
			t.Fatal(err)
		}
		if owner := managers(cm); !strings.Contains(owner, "kustomize-controller") {
			t.Errorf("want the object applied by kustomize-controller's field manager, got %s", owner)
		}

		// Without its kubeConfig Secret, the deletion cannot reach the
		// remote cluster: the objects there are left in place, and the
		// Kustomization goes rather than holding its namespace.
		if err := env.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "prod-kubeconfig"}}); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(ctx, ks); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(ks), &kustomizev1.Kustomization{})
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the Kustomization whose kubeConfig Secret is gone is still there (%v)", err)
			}
		}
		if err := remote.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "a"}, &corev1.ConfigMap{}); err != nil {
			t.Errorf("the remote object should be left in place when the cluster cannot be named: %v", err)
		}
		var events corev1.EventList
		if err := env.Client.List(ctx, &events, client.InNamespace(f.ns)); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events.Items {
			found = found || (e.InvolvedObject.Name == "tenant" && strings.Contains(e.Message, "the objects in the remote cluster were left in place"))
		}
		if !found {
			t.Error("no event says the remote objects were left in place")
		}
	})

	t.Run("an unreachable cluster fails clearly, prunes nothing, and a changed Secret is used", func(t *testing.T) {
		f := newFixture(t, map[string]string{"app/a.yaml": fmt.Sprintf(configMap, "a", "1")})
		remote.Namespace(t, f.ns)
		secret := env.KubeconfigSecret(t, f.ns, "prod-kubeconfig", "value", elsewhere(t, remote.Kubeconfig, "https://127.0.0.1:1"))
		ks := f.kustomization("unreachable", "./app", func(k *kustomizev1.Kustomization) {
			k.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "prod-kubeconfig"}}
		})
		got := f.waitReason(ks, meta.ReconciliationFailedReason)
		msg := conditions.GetMessage(got, meta.ReadyCondition)
		t.Logf("unreachable: %s", msg)
		if !strings.Contains(msg, "the remote cluster https://127.0.0.1:1 of KubeConfig secret '"+f.ns+"/prod-kubeconfig' cannot be reached") {
			t.Errorf("want a message that says the remote cluster cannot be reached: %q", msg)
		}
		if !conditions.IsReconciling(got) || conditions.IsStalled(got) {
			t.Errorf("an unreachable cluster is retried, not stalled: %s", describe(got))
		}
		// The Secret now points at the cluster: the next reconcile uses it.
		secret.Data["value"] = remote.Kubeconfig
		if err := env.Client.Update(ctx, secret); err != nil {
			t.Fatal(err)
		}
		requestReconcile(t, ks)
		f.waitApplied(ks, f.revision())
		if err := remote.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "a"}, &corev1.ConfigMap{}); err != nil {
			t.Errorf("not applied after the Secret was fixed: %v", err)
		}
		// The cluster goes away again: the apply fails, nothing is
		// pruned, and the status says why.
		secret.Data["value"] = elsewhere(t, remote.Kubeconfig, "https://127.0.0.1:1")
		if err := env.Client.Update(ctx, secret); err != nil {
			t.Fatal(err)
		}
		rev := f.commit(map[string]string{"app/a.yaml": "", "app/b.yaml": fmt.Sprintf(configMap, "b", "1")}, "replace a with b")
		f.wait(ks, 60*time.Second, "to fail on the new revision", func(k *kustomizev1.Kustomization) bool {
			return k.Status.LastAttemptedRevision == rev && conditions.IsFalse(k, meta.ReadyCondition) &&
				strings.Contains(conditions.GetMessage(k, meta.ReadyCondition), "cannot be reached")
		})
		if err := remote.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "a"}, &corev1.ConfigMap{}); err != nil {
			t.Errorf("a was pruned while the cluster could not be reached: %v", err)
		}
	})

	t.Run("kubeconfigs that cannot be used are refused with a clear message", func(t *testing.T) {
		f := newFixture(t, map[string]string{"app/a.yaml": fmt.Sprintf(configMap, "a", "1")})
		withExec := withUser(t, remote.Kubeconfig, func(u *clientcmdapi.AuthInfo) {
			u.Token = ""
			u.Exec = &clientcmdapi.ExecConfig{Command: "aws", Args: []string{"eks", "get-token"}, APIVersion: "client.authentication.k8s.io/v1"}
		})
		withFile := withUser(t, remote.Kubeconfig, func(u *clientcmdapi.AuthInfo) { u.Token, u.TokenFile = "", "/var/run/token" })
		cases := []struct {
			name, key string
			data      []byte
			ref       *meta.KubeConfigReference
			want      []string
			stalled   bool
		}{
			{name: "broken", key: "value", data: []byte("this: [is not a kubeconfig"),
				want: []string{"invalid KubeConfig in secret '" + f.ns + "/broken'"}},
			{name: "exec", key: "value", data: withExec,
				want: []string{"exec plugin", `"aws"`, "--insecure-kubeconfig-exec"}},
			{name: "token-file", key: "value", data: withFile,
				want: []string{"tokenFile", "only an inline token is supported"}},
			{name: "wrong-key", key: "config", data: remote.Kubeconfig,
				want: []string{"KubeConfig secret '" + f.ns + "/wrong-key' does not contain a 'value' or 'value.yaml' key"}},
			{name: "identity", ref: &meta.KubeConfigReference{ConfigMapRef: &meta.LocalObjectReference{Name: "eks"}},
				want: []string{"configMapRef", "eks", "workload identity", "no cloud identity"}, stalled: true},
		}
		for _, c := range cases {
			ref := c.ref
			if ref == nil {
				env.KubeconfigSecret(t, f.ns, c.name, c.key, c.data)
				ref = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: c.name}}
			}
			c.ref = ref
			f.kustomization(c.name, "./app", func(k *kustomizev1.Kustomization) { k.Spec.KubeConfig = ref })
		}
		if err := env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "eks"},
			Data: map[string]string{"provider": "aws", "cluster": "arn:aws:eks:eu-west-1:000000000000:cluster/prod"}}); err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			got := f.waitReason(&kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: c.name}}, meta.ReconciliationFailedReason)
			msg := conditions.GetMessage(got, meta.ReadyCondition)
			t.Logf("%s: %s", c.name, msg)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%s: the message should say %q: %q", c.name, w, msg)
				}
			}
			if conditions.IsStalled(got) != c.stalled {
				t.Errorf("%s: stalled %v, want %v: %s", c.name, conditions.IsStalled(got), c.stalled, describe(got))
			}
		}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "a"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
			t.Errorf("an unusable kubeconfig applied to the home cluster (%v)", err)
		}
	})
}

// waitRemote polls ConfigMap ns/name in the remote cluster until cond holds.
func waitRemote(t *testing.T, remote *testenv.Remote, ns, name, what string, cond func(*corev1.ConfigMap, error) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cm := &corev1.ConfigMap{}
		err := remote.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm)
		if cond(cm, err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s in the remote cluster (last: %v, %v)", what, cm.Data, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func managers(o client.Object) string {
	var names []string
	for _, m := range o.GetManagedFields() {
		names = append(names, m.Manager)
	}
	return strings.Join(names, ",")
}

// elsewhere is kubeconfig with its server replaced.
func elsewhere(t *testing.T, kubeconfig []byte, server string) []byte {
	t.Helper()
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withUser is kubeconfig with its users changed by edit.
func withUser(t *testing.T, kubeconfig []byte, edit func(*clientcmdapi.AuthInfo)) []byte {
	t.Helper()
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cfg.AuthInfos {
		edit(u)
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
