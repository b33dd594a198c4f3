package ui_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/ui"
)

// kustomization is a Kustomization of a GitRepository, depending on deps
// ("name" or "namespace/name").
func kustomization(namespace, name string, deps ...string) *kustomizev1.Kustomization {
	return &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: kustomizev1.KustomizationSpec{
			Interval:  metav1.Duration{Duration: 10 * time.Minute},
			Path:      "./apps/" + name,
			Prune:     true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "cluster"},
			DependsOn: dependsOn(deps),
		},
	}
}

// helmRelease is a HelmRelease of an OCIRepository chart.
func helmRelease(namespace, name string, deps ...string) *helmv2.HelmRelease {
	return &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: helmv2.HelmReleaseSpec{
			Interval:  metav1.Duration{Duration: 10 * time.Minute},
			ChartRef:  &helmv2.CrossNamespaceSourceReference{Kind: "OCIRepository", Name: name},
			DependsOn: dependsOn(deps),
		},
	}
}

func dependsOn(deps []string) []meta.DependencyReference {
	var refs []meta.DependencyReference
	for _, d := range deps {
		ref := meta.DependencyReference{Name: d}
		for i := range d {
			if d[i] == '/' {
				ref = meta.DependencyReference{Namespace: d[:i], Name: d[i+1:]}
			}
		}
		refs = append(refs, ref)
	}
	return refs
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}
}

// conditioned is a Kustomization or a HelmRelease as a controller writes
// its status.
type conditioned interface {
	client.Object
	GetConditions() []metav1.Condition
	SetConditions([]metav1.Condition)
}

// setReady writes obj's Ready condition as a controller would, with the
// object's current generation as observed.
func setReady(t *testing.T, obj conditioned, status metav1.ConditionStatus, reason, message string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		conds := obj.GetConditions()
		apimeta.SetStatusCondition(&conds, metav1.Condition{
			Type: meta.ReadyCondition, Status: status, Reason: reason, Message: message,
			ObservedGeneration: obj.GetGeneration(),
		})
		obj.SetConditions(conds)
		switch o := obj.(type) {
		case *kustomizev1.Kustomization:
			o.Status.ObservedGeneration = o.Generation
		case *helmv2.HelmRelease:
			o.Status.ObservedGeneration = o.Generation
		}
		return env.Client.Status().Update(context.Background(), obj)
	})
	if err != nil {
		t.Fatalf("writing the status of %s: %v", obj.GetName(), err)
	}
}

// serve runs a dashboard until the test ends.
func serve(t *testing.T, opts ui.Options) *ui.Server {
	t.Helper()
	srv, err := ui.New(env.Config, opts)
	if err != nil {
		t.Fatalf("starting the dashboard: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the dashboard stopped with an error: %v", err)
		}
	})
	return srv
}

// tab is a browser tab that a test drives.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// browser starts a headless Chromium for one test. The browser tests need
// Chromium: they fail, not skip, without it, so that CI cannot pass them
// silently.
func browser(t *testing.T) tab {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		var err error
		if path, err = exec.LookPath("chromium"); err != nil {
			t.Fatal("the dashboard's browser tests need Chromium, which is not installed: run 'apt-get install -y chromium' (Debian's package), or set CHROMIUM to a Chromium or Chrome binary")
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1600, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first call starts the browser for the life of ctx: no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	// Report the page's script errors: a test that fails on one says why.
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			t.Logf("script error in the page at %s:%d: %s", d.URL, d.LineNumber+1, desc)
		}
	}()
	return tab{t, ctx}
}

// do runs steps, failing the test with what when one fails.
func (b tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	for i, step := range steps {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		err := chromedp.Do(ctx, step)
		cancel()
		if err != nil {
			page, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
			b.t.Fatalf("%s: step %d of %d: %v\nThe page says:\n%s", what, i+1, len(steps), err, page)
		}
	}
}

// value runs one action and returns its value.
func value[T any](b tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 40*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text is the text of the first element that matches a CSS selector.
func (b tab) text(css string) string {
	b.t.Helper()
	return value(b, "reading "+css, chromedp.Text(chromedp.CSS(css)))
}

// until waits for a JavaScript expression to be true.
func until(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second))
}

// click clicks the first element that matches a CSS selector.
func click(css string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(css)) }

// visible waits for an element that matches a CSS selector to show.
func visible(css string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(css))
}

// eventually retries check until it passes or a deadline passes.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// grantPatch lets user patch Kustomizations in namespace.
func grantPatch(t *testing.T, namespace, user string) {
	t.Helper()
	create(t,
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "dashboard-actions"},
			Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{"kustomize.toolkit.fluxcd.io"},
				Resources: []string{"kustomizations"},
				Verbs:     []string{"patch"},
			}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "dashboard-actions"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "dashboard-actions"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		},
	)
}
