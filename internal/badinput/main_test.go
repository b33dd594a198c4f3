package badinput_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// secretMark starts every secret value of the suite: no status and no
// event may hold it.
const secretMark = "S3CR3T"

// objectCase is one object a user could write, and what weir must tell
// them about it.
type objectCase struct {
	name string
	// obj is created in the suite's namespace, with strict field
	// validation, as `kubectl apply` creates it.
	obj client.Object
	// refused: the API server must refuse to create it, with an error
	// holding these fragments (the CRD's validation names the field).
	refused []string
	// Otherwise it must turn Ready=False with reason (when set) and a
	// message holding want, and Stalled=True when stalled is set.
	reason  string
	stalled bool
	want    []string
	// absent names objects of the namespace ("ConfigMap/name") that must
	// not exist: a failed reconcile applies nothing.
	absent []string
	// fixedIn names the branch whose fix the case needs, when it is not
	// this one.
	fixedIn string
}

// outcome is what the suite saw of a case.
type outcome struct {
	createErr error
	done      bool
	status    string // the conditions, for failure messages
}

// runCases creates every case's object at once, waits (at most timeout)
// until each reaches what it wants, then reports each case as a subtest.
func runCases(t *testing.T, ns string, cases []objectCase, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	out := make([]outcome, len(cases))
	for i, c := range cases {
		c.obj.SetNamespace(ns)
		inNamespace(c.obj, ns)
		out[i].createErr = env.Client.Create(ctx, c.obj, &client.CreateOptions{Raw: &metav1.CreateOptions{FieldValidation: "Strict"}})
		out[i].done = out[i].createErr != nil
	}
	deadline := time.Now().Add(timeout)
	for {
		pending := 0
		for i, c := range cases {
			if out[i].done {
				continue
			}
			conds, err := conditionsOf(ctx, c.obj)
			if err != nil {
				out[i].status = err.Error()
				pending++
				continue
			}
			out[i].status = describe(conds)
			if c.reached(conds) {
				out[i].done = true
				continue
			}
			pending++
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.fixedIn != "" {
				t.Logf("needs the fix of branch %s", c.fixedIn)
			}
			c.check(t, ns, out[i])
		})
	}
}

// reached tells whether the object's conditions are those the case wants.
func (c objectCase) reached(conds []metav1.Condition) bool {
	ready := find(conds, meta.ReadyCondition)
	if ready == nil || ready.Status != metav1.ConditionFalse {
		return false
	}
	if c.reason != "" && ready.Reason != c.reason {
		return false
	}
	for _, w := range c.want {
		if !strings.Contains(ready.Message, w) {
			return false
		}
	}
	if c.stalled {
		if s := find(conds, meta.StalledCondition); s == nil || s.Status != metav1.ConditionTrue {
			return false
		}
	}
	return true
}

// check reports what the case saw against what it wants.
func (c objectCase) check(t *testing.T, ns string, o outcome) {
	t.Helper()
	switch {
	case len(c.refused) > 0 && o.createErr == nil:
		t.Errorf("the API server accepted %s; want it refused saying %q", kindName(c.obj), c.refused)
	case len(c.refused) > 0:
		for _, w := range c.refused {
			if !strings.Contains(o.createErr.Error(), w) {
				t.Errorf("the refusal %q does not say %q", o.createErr, w)
			}
		}
	case o.createErr != nil:
		t.Fatalf("creating %s: %v", kindName(c.obj), o.createErr)
	case !o.done:
		t.Errorf("%s never reached Ready=False %s %q (stalled: %v); last status: %s", kindName(c.obj), c.reason, c.want, c.stalled, o.status)
	}
	if strings.Contains(o.status, secretMark) {
		t.Errorf("the status shows a secret value: %s", o.status)
	}
	if o.createErr != nil && strings.Contains(o.createErr.Error(), secretMark) {
		t.Errorf("the refusal shows a secret value: %s", o.createErr)
	}
	for _, a := range c.absent {
		kind, name, _ := strings.Cut(a, "/")
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		if kind == "Deployment" {
			u.SetAPIVersion("apps/v1")
		}
		u.SetKind(kind)
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u)
		if err == nil {
			t.Errorf("%s was applied by a failed reconcile", a)
		}
	}
}

// conditionsOf reads the object's status conditions, whatever its kind.
func conditionsOf(ctx context.Context, obj client.Object) ([]metav1.Condition, error) {
	gvk, err := apiutil.GVKForObject(obj, kube.Scheme())
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), u); err != nil {
		return nil, err
	}
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var conds []metav1.Condition
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		var c metav1.Condition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &c); err == nil {
			conds = append(conds, c)
		}
	}
	return conds, nil
}

func find(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

func describe(conds []metav1.Condition) string {
	var b strings.Builder
	for _, c := range conds {
		fmt.Fprintf(&b, "[%s=%s %s: %s] ", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

func kindName(obj client.Object) string {
	gvk, _ := apiutil.GVKForObject(obj, kube.Scheme())
	return gvk.Kind + "/" + obj.GetName()
}

// checkNoSecretInEvents fails when an event of the namespace holds a
// secret value.
func checkNoSecretInEvents(t *testing.T, ns string) {
	t.Helper()
	var events corev1.EventList
	if err := env.Client.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if strings.Contains(e.Message, secretMark) {
			t.Errorf("event %s of %s/%s shows a secret value: %s", e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
		}
	}
}

// raw is an object written by hand, for values of the wrong type.
func raw(apiVersion, kind, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetName(name)
	return u
}

// mustJSON encodes v, for apiextensionsv1.JSON values.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inNamespace sends what a Kustomization applies to ns, unless its case
// names another namespace.
func inNamespace(obj client.Object, ns string) {
	if k, ok := obj.(*kustomizev1.Kustomization); ok && k.Spec.TargetNamespace == "" {
		k.Spec.TargetNamespace = ns
	}
}
