package manager_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/manager"
	"github.com/weirhq/weir/internal/testenv"
)

// object builds an unstructured object: the typed structs cannot even hold
// the durations these tests need.
func object(apiVersion, kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec":     spec,
	}}
}

func gitSpec(url, interval string) map[string]any {
	return map[string]any{"url": url, "interval": interval, "ref": map[string]any{"branch": "main"}}
}

func kustomizationSpec(interval string) map[string]any {
	return map[string]any{"interval": interval, "path": "./deploy", "prune": true,
		"sourceRef": map[string]any{"kind": "GitRepository", "name": "app"}}
}

// Flux's pattern lets through durations that Go's time.Duration cannot
// hold; weir's CRDs refuse them with a message.
func TestDurationsTooLongForGoAreRefused(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	const want = "must be a duration of at most 2562047h"
	cases := []struct {
		name string
		obj  *unstructured.Unstructured
	}{
		{"Kustomization interval", object("kustomize.toolkit.fluxcd.io/v1", "Kustomization", ns, "k1", kustomizationSpec("999999999h"))},
		{"Kustomization timeout", object("kustomize.toolkit.fluxcd.io/v1", "Kustomization", ns, "k2",
			merge(kustomizationSpec("1m"), map[string]any{"timeout": "2562047h60m"}))},
		{"GitRepository interval", object("source.toolkit.fluxcd.io/v1", "GitRepository", ns, "g1", gitSpec("https://example.com/a.git", "2562048h"))},
		{"GitRepository timeout", object("source.toolkit.fluxcd.io/v1", "GitRepository", ns, "g2",
			merge(gitSpec("https://example.com/a.git", "1m"), map[string]any{"timeout": "99999999999m"}))},
		{"OCIRepository v1beta2 interval", object("source.toolkit.fluxcd.io/v1beta2", "OCIRepository", ns, "o1",
			map[string]any{"url": "oci://example.com/a", "interval": "1000000000h"})},
		{"HelmRelease install timeout", object("helm.toolkit.fluxcd.io/v2", "HelmRelease", ns, "h1",
			map[string]any{"interval": "1m", "chartRef": map[string]any{"kind": "OCIRepository", "name": "o"},
				"install": map[string]any{"timeout": "9999999999999999999s"}})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Client.Create(ctx, tc.obj)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("creating it: %v, want an error saying %q", err, want)
			}
			t.Log(err)
		})
	}
	// The longest Go holds, and durations of several parts, are accepted.
	for i, d := range []string{"2562047h", "2562047h47m16s", "1h30m", "1.5h", "90s", "500ms"} {
		o := object("kustomize.toolkit.fluxcd.io/v1", "Kustomization", ns, "ok-"+string(rune('a'+i)), kustomizationSpec(d))
		if err := env.Client.Create(ctx, o); err != nil {
			t.Errorf("interval %s was refused: %v", d, err)
		}
	}
}

func merge(a, b map[string]any) map[string]any {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// Objects stored before the CRDs refused them (or under Flux's own CRDs)
// cannot be decoded. Each is left out and marked Stalled; every other
// object of its kind is reconciled as usual.
func TestAnObjectThatCannotBeDecodedStallsAlone(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	git := testenv.NewGitServer(t, "", "")
	git.Repo(t, "app").Commit("main", map[string]string{
		"deploy/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\ndata:\n  a: \"1\"\n",
	}, "app")

	// Store the objects under CRDs without the duration rule, as Flux's are.
	relaxDurationRules(t, "gitrepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io")
	bad := []*unstructured.Unstructured{
		object("source.toolkit.fluxcd.io/v1", "GitRepository", ns, "bad", gitSpec(git.HTTPURL("app"), "2562048h")),
		object("kustomize.toolkit.fluxcd.io/v1", "Kustomization", ns, "bad", kustomizationSpec("999999999h")),
	}
	for _, o := range bad {
		waitUntil(t, time.Minute, "the API server to accept "+o.GetKind()+" bad", func() bool {
			return env.Client.Create(ctx, o.DeepCopy()) == nil
		})
	}
	if err := install.Install(ctx, env.Client); err != nil {
		t.Fatal(err)
	}

	opts := manager.DefaultOptions()
	opts.LeaderElect = false
	opts.MetricsAddr = "0"
	opts.HealthAddr = freeAddr(t)
	opts.StoragePath = t.TempDir()
	opts.StorageAddr = "127.0.0.1:0"
	opts.Logger = zap.New(zap.WriteTo(io.Discard))
	startManager(t, opts)

	repo := gitRepository(ns, "app", git.HTTPURL("app"), nil)
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: time.Hour}, Path: "./deploy", Prune: true, TargetNamespace: ns,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "app"},
		},
	}
	for _, o := range []client.Object{repo, ks} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []client.Object{repo, ks} {
		waitReady(t, o, 2*time.Minute)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "good"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("the good Kustomization applied nothing: %v", err)
	}

	for _, o := range bad {
		want := map[string]string{"GitRepository": `invalid duration "2562048h"`, "Kustomization": `invalid duration "999999999h"`}[o.GetKind()]
		waitUntil(t, time.Minute, o.GetKind()+" bad to be Stalled", func() bool {
			got := o.DeepCopy()
			if env.Client.Get(ctx, client.ObjectKeyFromObject(o), got) != nil {
				return false
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			stalled, notReady := false, false
			for _, c := range conds {
				m := c.(map[string]any)
				msg, _ := m["message"].(string)
				if !strings.Contains(msg, want) || m["reason"] != "InvalidObject" {
					continue
				}
				stalled = stalled || m["type"] == meta.StalledCondition && m["status"] == "True"
				notReady = notReady || m["type"] == meta.ReadyCondition && m["status"] == "False"
			}
			return stalled && notReady
		})
	}
	if code, body := probe(t, "http://"+opts.HealthAddr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz answered %d: %s", code, body)
	}
}

// relaxDurationRules removes the duration rules from the CRDs named until
// the test ends.
func relaxDurationRules(t *testing.T, names ...string) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() {
		if err := install.Install(ctx, env.Client); err != nil {
			t.Errorf("restoring the CRDs: %v", err)
		}
	})
	for _, name := range names {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			t.Fatal(err)
		}
		for i := range crd.Spec.Versions {
			spec := crd.Spec.Versions[i].Schema.OpenAPIV3Schema.Properties["spec"]
			interval := spec.Properties["interval"]
			interval.XValidations, interval.MaxLength = nil, nil
			spec.Properties["interval"] = interval
			crd.Spec.Versions[i].Schema.OpenAPIV3Schema.Properties["spec"] = spec
		}
		if err := env.Client.Update(ctx, crd); err != nil {
			t.Fatal(err)
		}
	}
}

// When one kind cannot be listed, no controller starts (controller-runtime
// starts them once every informer has synced): /readyz says so and names
// the kind, while /healthz, which restarts the process, stays healthy.
func TestReadyzNamesAKindItCannotList(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	// weir's identity may do everything but read HelmReleases.
	sa := "weir-" + testenv.RandomName(6)
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"", "coordination.k8s.io", "events.k8s.io", "source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io"},
			Resources: []string{"*"}, Verbs: []string{"*"},
		}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: sa},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: sa}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(ctx, o) })
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa}

	opts := manager.DefaultOptions()
	opts.LeaderElect = false
	opts.MetricsAddr = "0"
	opts.HealthAddr = freeAddr(t)
	opts.StoragePath = t.TempDir()
	opts.StorageAddr = "127.0.0.1:0"
	opts.Logger = zap.New(zap.WriteTo(io.Discard))
	m, err := manager.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Start(runCtx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Log("the manager had not stopped 30s after its context ended")
		}
	}()

	// Once the other kinds are listed, only helmreleases and the
	// controllers fail.
	var code int
	var body string
	waitUntil(t, 2*time.Minute, "/readyz to fail on helmreleases alone", func() bool {
		code, body = probe(t, "http://"+opts.HealthAddr+"/readyz")
		return code == http.StatusInternalServerError && strings.Contains(body, "[-]helmreleases failed") &&
			strings.Contains(body, "[+]gitrepositories ok") && strings.Contains(body, "[+]kustomizations ok")
	})
	if !strings.Contains(body, "[-]controllers failed") {
		t.Errorf("/readyz does not say the controllers are not running:\n%s", body)
	}
	if code, body := probe(t, "http://"+opts.HealthAddr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz answered %d: %s", code, body)
	}
}

// probe GETs url and returns the status code (0 when it cannot connect)
// and the body.
func probe(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
