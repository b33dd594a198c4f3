package ui_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/ui"
)

func TestStatusChangeAppearsWithoutReload(t *testing.T) {
	ns := env.Namespace(t)
	base, app := kustomization(ns, "base"), kustomization(ns, "app", "base")
	create(t, base, app)
	srv := serve(t, ui.Options{Namespace: ns})
	b := browser(t)

	node := func(name string) string { return `document.querySelector('g.node[data-name="` + name + `"]')` }
	colour := func(name string) string {
		return value(b, "reading the colour of "+name, chromedp.Evaluate[string](`getComputedStyle(`+node(name)+`.querySelector('.bar')).fill`))
	}
	b.do("loading the page", chromedp.Navigate(srv.URL()), until(node("app")+` !== null`))
	loadedAt := value(b, "reading window.__loadedAt", chromedp.Evaluate[float64](`window.__loadedAt`))

	setReady(t, base, metav1.ConditionTrue, meta.ReconciliationSucceededReason, "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567")
	b.do("waiting for base to turn Ready on the page",
		until(node("base")+`.dataset.ready === "True" && `+node("base")+`.dataset.state === "ready"`))
	if c := colour("base"); c != "rgb(26, 127, 55)" {
		t.Errorf("a Ready node is drawn in %s, want green rgb(26, 127, 55)", c)
	}

	setReady(t, base, metav1.ConditionFalse, "BuildFailed", "kustomization path not found: stat apps/base: no such file or directory")
	setReady(t, app, metav1.ConditionFalse, meta.DependencyNotReadyReason, "dependency '"+ns+"/base' is not ready")
	b.do("waiting for the failure on the page",
		until(node("base")+`.dataset.state === "failed" && `+node("base")+`.dataset.ready === "False" && `+node("app")+`.dataset.state === "waiting"`),
		click(`g.node[data-name="app"] .box`),
		visible(`#why`))
	if c := colour("base"); c != "rgb(207, 34, 46)" {
		t.Errorf("a failed node is drawn in %s, want red rgb(207, 34, 46)", c)
	}
	// The same words as `weir why`: the dependency, and why it holds.
	if why, want := b.text("#why"), "Waiting for Kustomization "+ns+"/base to be Ready; it failed "; !strings.Contains(why, want) ||
		!strings.Contains(why, "(BuildFailed): kustomization path not found") {
		t.Errorf("the detail pane says %q, want it to contain %q and base's message", why, want)
	}
	if h := strings.Join(strings.Fields(b.text("#counts")), " "); !strings.Contains(h, "1 failed") || !strings.Contains(h, "1 progressing") {
		t.Errorf("header %q, want 1 failed and 1 progressing", h)
	}

	if after := value(b, "reading window.__loadedAt", chromedp.Evaluate[float64](`window.__loadedAt`)); after != loadedAt {
		t.Errorf("the page was reloaded (loaded at %v, then %v): changes must arrive on the open page", loadedAt, after)
	}
}
