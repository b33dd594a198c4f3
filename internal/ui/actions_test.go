package ui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/ui"
)

func TestReconcileSuspendAndResumeButtons(t *testing.T) {
	ns := env.Namespace(t)
	ks := kustomization(ns, "podinfo")
	create(t, ks)
	setReady(t, ks, metav1.ConditionTrue, meta.ReconciliationSucceededReason, "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567")
	srv := serve(t, ui.Options{Namespace: ns})
	b := browser(t)

	read := func() *kustomizev1.Kustomization {
		var obj kustomizev1.Kustomization
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), &obj); err != nil {
			t.Fatalf("reading the Kustomization: %v", err)
		}
		return &obj
	}
	b.do("clicking Reconcile",
		chromedp.Navigate(srv.URL()),
		click(`g.node[data-name="podinfo"] .box`),
		click(`button[data-action="reconcile"]`),
		visible(`.toast[data-kind="ok"]`))
	toast := b.text(`.toast[data-kind="ok"]`)
	requestedAt := read().Annotations[meta.ReconcileRequestAnnotation]
	if _, err := time.Parse(time.RFC3339Nano, requestedAt); err != nil {
		t.Fatalf("after Reconcile, %s is %q, want a time: %v", meta.ReconcileRequestAnnotation, requestedAt, err)
	}
	if !strings.Contains(toast, "Reconcile requested") {
		t.Errorf("the page says %q after Reconcile", toast)
	}

	node := `document.querySelector('g.node[data-name="podinfo"]')`
	b.do("clicking Suspend",
		click(`button[data-action="suspend"]`),
		until(node+`.dataset.state === "suspended"`),
		visible(`button[data-action="resume"]`))
	if !read().Spec.Suspend {
		t.Fatal("after Suspend, spec.suspend is false")
	}
	b.do("clicking Resume",
		click(`button[data-action="resume"]`),
		until(node+`.dataset.state !== "suspended"`),
		visible(`button[data-action="suspend"]`))
	obj := read()
	if obj.Spec.Suspend {
		t.Error("after Resume, spec.suspend is true")
	}
	if obj.Annotations[meta.ReconcileRequestAnnotation] == requestedAt {
		t.Error("Resume did not request a reconcile")
	}
}

func TestActionsAreDecidedByRBACOfTheImpersonatedUser(t *testing.T) {
	ns := env.Namespace(t)
	ks := kustomization(ns, "guarded")
	create(t, ks)
	user := "dashboard-" + ns
	srv := serve(t, ui.Options{Addr: "0.0.0.0:0", Token: "t0ken-" + ns, ImpersonateUser: user, Namespace: ns})
	b := browser(t)

	b.do("clicking Reconcile without rights",
		chromedp.Navigate(srv.URL()+"?token=t0ken-"+ns),
		click(`g.node[data-name="guarded"] .box`),
		click(`button[data-action="reconcile"]`),
		visible(`.toast[data-kind="error"]`))
	msg := b.text(`.toast[data-kind="error"]`)
	for _, want := range []string{"Forbidden", `User "` + user + `" cannot patch resource "kustomizations"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("the page says %q, want it to contain %q", msg, want)
		}
	}
	var obj kustomizev1.Kustomization
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), &obj); err != nil {
		t.Fatal(err)
	}
	if v, ok := obj.Annotations[meta.ReconcileRequestAnnotation]; ok {
		t.Fatalf("a refused reconcile set %s to %q", meta.ReconcileRequestAnnotation, v)
	}

	grantPatch(t, ns, user)
	eventually(t, "reconcile after granting patch on kustomizations", func() error {
		b.do("clicking Reconcile again",
			chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('.toast').forEach(t => t.remove())`),
			click(`button[data-action="reconcile"]`),
			visible(`.toast`))
		msg = b.text(`.toast`)
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), &obj); err != nil {
			return err
		}
		if obj.Annotations[meta.ReconcileRequestAnnotation] == "" {
			return fmt.Errorf("no reconcile requested; the page says %q", msg)
		}
		return nil
	})
}
