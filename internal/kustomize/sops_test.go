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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

const secret = `apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: %s
`

func TestSOPSSecretsAreDecryptedOnlyWithTheRightKey(t *testing.T) {
	key := testenv.AgeIdentity(t)
	other := testenv.AgeIdentity(t)
	f := newFixture(t, map[string]string{
		"app/secret.sops.yaml": testenv.EncryptYAML(t, fmt.Sprintf(secret, "first-password"), key),
		"app/cm.yaml":          fmt.Sprintf(configMap, "cm", "1"),
	})
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "sops-age"},
		Data:       map[string][]byte{"age.agekey": []byte(key.String())},
	}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	ks := f.kustomization("app", "./app", func(k *kustomizev1.Kustomization) {
		k.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}}
	})
	f.waitApplied(ks, f.revision())
	db := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "db"}, db); err != nil {
		t.Fatal(err)
	}
	if string(db.Data["password"]) != "first-password" {
		t.Fatalf("the Secret was not decrypted: %q", db.Data["password"])
	}

	// A change encrypted for another key, and a file removed at the same
	// time: the render fails, nothing is applied and nothing is pruned.
	f.commit(map[string]string{
		"app/secret.sops.yaml": testenv.EncryptYAML(t, fmt.Sprintf(secret, "second-password"), other),
		"app/cm.yaml":          "",
	}, "rotate with the wrong key")
	got := f.waitReason(ks, meta.BuildFailedReason)
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	if !strings.Contains(msg, "secret.sops.yaml") || strings.Contains(msg, "password") {
		t.Errorf("decryption failure %q should name the file and hold no secret", msg)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "db"}, db); err != nil || string(db.Data["password"]) != "first-password" {
		t.Errorf("the Secret changed after a failed decryption: %v %q", err, db.Data["password"])
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "cm"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("an object was pruned after a failed decryption: %v", err)
	}
	var events corev1.EventList
	if err := env.Client.List(context.Background(), &events, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if strings.Contains(e.Message, "first-password") || strings.Contains(e.Message, "second-password") {
			t.Errorf("a decrypted value reached an event: %q", e.Message)
		}
	}
}
