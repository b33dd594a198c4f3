package chaos

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

var faults = []struct {
	name string
	mode fault
}{
	{"down", shutdown},
	{"answering 500", refuse},
	{"hanging", hang},
}

// The Git server down, answering 500 and hanging: the GitRepository says
// so, what was applied stays applied (nothing pruned, the Kustomizations
// keep their revision), and the change pushed meanwhile converges once the
// server is back.
func TestGitServerFaultsLoseNothing(t *testing.T) {
	startWeir(t, newWeirOptions(t))
	var proxy *faultProxy
	c := newChain(t, 2, 2*time.Second, func(u string) string {
		proxy = newFaultProxy(t, u)
		return proxy.url(u)
	})
	del := watchDeletions(t, c.ns)
	c.waitConverged("1", 3*time.Minute)

	for i, f := range faults {
		value := fmt.Sprint(i + 2)
		before := c.revision()
		proxy.set(f.mode)
		c.commit(value)
		got := waitSource(t, &sourcev1.GitRepository{}, c.ns, "repo", "to fail with the Git server "+f.name)
		t.Logf("Git server %s: %s", f.name, conditions.GetMessage(got, meta.ReadyCondition))
		for _, k := range c.statuses() {
			if k.Status.LastAppliedRevision != before || !conditions.IsReady(&k) {
				t.Errorf("Git server %s: Kustomization %s left its revision or Ready (%s, %s)", f.name, k.Name, k.Status.LastAppliedRevision, conditions.GetMessage(&k, meta.ReadyCondition))
			}
		}
		proxy.set(pass)
		c.waitConverged(value, 3*time.Minute)
	}
	del.check(t)
}

// waitSource waits until the source obj is Ready=False, and returns it.
func waitSource[T client.Object](t *testing.T, obj T, ns, name, what string) T {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
		if err == nil {
			if g, ok := any(obj).(conditions.Getter); ok && conditions.IsFalse(g, meta.ReadyCondition) {
				return obj
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s did not turn Ready=False %s within 2 minutes", ns, name, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The registry down, answering 500 and hanging: the OCIRepository says
// so, the Kustomization applying its artifact keeps what it applied, and
// the artifact pushed meanwhile is applied once the registry is back.
func TestRegistryFaultsLoseNothing(t *testing.T) {
	startWeir(t, newWeirOptions(t))
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	push := func(value string) {
		reg.PushFiles(t, "manifests/app", "latest", map[string]string{"cm.yaml": fmt.Sprintf(configMap, "app", value)}, nil)
	}
	push("1")
	proxy := newFaultProxy(t, "http://"+reg.Host)
	src := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: sourcev1.OCIRepositorySpec{
			URL:       "oci://" + proxy.addr + "/manifests/app",
			Interval:  metav1.Duration{Duration: 2 * time.Second},
			Timeout:   &metav1.Duration{Duration: 10 * time.Second},
			Insecure:  true,
			Reference: &sourcev1.OCIRepositoryRef{Tag: "latest"},
		},
	}
	if err := env.Client.Create(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: time.Hour},
			Path:            "./",
			Prune:           true,
			TargetNamespace: ns,
			SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: "app"},
		},
	}
	if err := env.Client.Create(context.Background(), ks); err != nil {
		t.Fatal(err)
	}
	del := watchDeletions(t, ns)
	waitValue(t, ns, "app", "1")

	for i, f := range faults {
		value := fmt.Sprint(i + 2)
		proxy.set(f.mode)
		push(value)
		got := waitSource(t, &sourcev1.OCIRepository{}, ns, "app", "with the registry "+f.name)
		msg := conditions.GetMessage(got, meta.ReadyCondition)
		t.Logf("registry %s: %s", f.name, msg)
		if strings.TrimSpace(msg) == "" {
			t.Errorf("registry %s: the OCIRepository says nothing of why", f.name)
		}
		k := &kustomizev1.Kustomization{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), k); err != nil || !conditions.IsReady(k) {
			t.Errorf("registry %s: the Kustomization is no longer Ready: %v", f.name, err)
		}
		proxy.set(pass)
		waitValue(t, ns, "app", value)
	}
	del.check(t)
}

// waitValue waits until ConfigMap ns/name holds value under key.
func waitValue(t *testing.T, ns, name, value string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		cm := &unstructured.Unstructured{}
		cm.SetAPIVersion("v1")
		cm.SetKind("ConfigMap")
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm)
		v, _, _ := unstructured.NestedString(cm.Object, "data", "key")
		if err == nil && v == value {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ConfigMap %s/%s did not hold %q within 3 minutes (holds %q, %v)", ns, name, value, v, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
