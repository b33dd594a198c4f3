package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/kube"
)

const testRevision = "main@sha1:0123456789abcdef0123456789abcdef01234567"

// fakeCluster points the verbs at a fake cluster holding objs.
func fakeCluster(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	c := fake.NewClientBuilder().
		WithScheme(kube.Scheme()).
		WithObjects(objs...).
		WithStatusSubresource(&sourcev1.GitRepository{}).
		Build()
	saved := objectClient
	objectClient = func(*globalOptions) (client.Client, error) { return c, nil }
	t.Cleanup(func() { objectClient = saved })
	return c
}

// weir runs the command line with args and returns what it printed.
func weir(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

type repoOption func(*sourcev1.GitRepository)

func inNamespace(ns string) repoOption { return func(r *sourcev1.GitRepository) { r.Namespace = ns } }

func suspendedRepo(r *sourcev1.GitRepository) { r.Spec.Suspend = true }

// stored is the status of a GitRepository that fetched testRevision.
func stored(r *sourcev1.GitRepository) {
	r.Status.ObservedGeneration = r.Generation
	r.Status.Artifact = &meta.Artifact{Revision: testRevision, Path: "a.tar.gz", URL: "http://a/a.tar.gz", Digest: "sha256:00", LastUpdateTime: metav1.Now()}
	setReady(r, metav1.ConditionTrue, meta.SucceededReason, "stored artifact for revision '"+testRevision+"'")
}

func failing(message string) repoOption {
	return func(r *sourcev1.GitRepository) { setReady(r, metav1.ConditionFalse, "GitOperationFailed", message) }
}

func setReady(r *sourcev1.GitRepository, status metav1.ConditionStatus, reason, message string) {
	apimeta.SetStatusCondition(&r.Status.Conditions, metav1.Condition{
		Type: meta.ReadyCondition, Status: status, Reason: reason, Message: message, ObservedGeneration: r.Generation,
	})
}

func gitRepo(name string, opts ...repoOption) *sourcev1.GitRepository {
	r := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux-system", Generation: 1},
		Spec: sourcev1.GitRepositorySpec{
			URL:      "https://git.example.com/" + name + ".git",
			Interval: metav1.Duration{Duration: time.Minute},
		},
	}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

func TestGetSourcesGitPrintsFluxColumns(t *testing.T) {
	fakeCluster(t,
		gitRepo("podinfo", stored),
		gitRepo("broken", suspendedRepo, failing("failed to checkout and determine revision: authentication required")),
		gitRepo("new"),
		gitRepo("elsewhere", inNamespace("apps"), stored),
	)

	out, _, err := weir(t, "get", "sources", "git")
	if err != nil {
		t.Fatal(err)
	}

	want := "" +
		"NAME      REVISION             SUSPENDED   READY     MESSAGE\n" +
		"broken                         True        False     failed to checkout and determine revision: authentication required\n" +
		"new                            False       Unknown   waiting to be reconciled\n" +
		"podinfo   main@sha1:01234567   False       True      stored artifact for revision 'main@sha1:01234567'\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestGetAllNamespacesLeadsWithNamespace(t *testing.T) {
	fakeCluster(t, gitRepo("podinfo", stored), gitRepo("elsewhere", inNamespace("apps"), stored))

	out, _, err := weir(t, "get", "sources", "git", "-A")
	if err != nil {
		t.Fatal(err)
	}

	want := "" +
		"NAMESPACE     NAME        REVISION             SUSPENDED   READY   MESSAGE\n" +
		"apps          elsewhere   main@sha1:01234567   False       True    stored artifact for revision 'main@sha1:01234567'\n" +
		"flux-system   podinfo     main@sha1:01234567   False       True    stored artifact for revision 'main@sha1:01234567'\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestGetOneSource(t *testing.T) {
	fakeCluster(t, gitRepo("podinfo", stored), gitRepo("other"), gitRepo("elsewhere", inNamespace("apps")))

	out, _, err := weir(t, "get", "source", "git", "podinfo")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "podinfo ") {
		t.Errorf("want the header and podinfo's row, got\n%s", out)
	}

	out, _, err = weir(t, "get", "sources", "git", "elsewhere", "-n", "apps")
	if err != nil || !strings.Contains(out, "elsewhere ") {
		t.Errorf("-n apps: err = %v, output\n%s", err, out)
	}
}

func TestGetMissingSource(t *testing.T) {
	fakeCluster(t)

	_, _, err := weir(t, "get", "sources", "git", "x")

	if err == nil || err.Error() != "GitRepository flux-system/x not found" {
		t.Errorf("err = %v, want \"GitRepository flux-system/x not found\"", err)
	}
}

func TestGetNoSourcesIsNotAnError(t *testing.T) {
	fakeCluster(t, gitRepo("elsewhere", inNamespace("apps")))

	out, errOut, err := weir(t, "get", "sources", "git")

	if err != nil {
		t.Fatal(err)
	}
	if out != "" || errOut != "no GitRepository objects found in flux-system namespace\n" {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
}

func TestGetSourcesAllNamesTheKind(t *testing.T) {
	fakeCluster(t, gitRepo("podinfo", stored))

	out, _, err := weir(t, "get", "sources", "all")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "\ngitrepository/podinfo   main@sha1:01234567") {
		t.Errorf("want a gitrepository/podinfo row, got\n%s", out)
	}
}

func TestGetPrintsObjectsAsKubectl(t *testing.T) {
	fakeCluster(t, gitRepo("podinfo", stored), gitRepo("other"))

	out, _, err := weir(t, "get", "sources", "git", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		APIVersion, Kind string
		Items            []map[string]any
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) != 2 {
		t.Fatalf("got a %s %s of %d items, want a v1 List of 2", list.APIVersion, list.Kind, len(list.Items))
	}
	if item := list.Items[1]; item["apiVersion"] != "source.toolkit.fluxcd.io/v1" || item["kind"] != "GitRepository" {
		t.Errorf("item without its type: apiVersion %v, kind %v", item["apiVersion"], item["kind"])
	}

	out, _, err = weir(t, "get", "sources", "git", "podinfo", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	var one sourcev1.GitRepository
	if err := yaml.UnmarshalStrict([]byte(out), &one); err != nil {
		t.Fatalf("not a GitRepository in YAML: %v\n%s", err, out)
	}
	if one.Kind != "GitRepository" || one.Name != "podinfo" || one.Status.Artifact.Revision != testRevision {
		t.Errorf("got %s %s at %v", one.Kind, one.Name, one.Status.Artifact)
	}
}

func TestGetRefusesUnknownOutput(t *testing.T) {
	fakeCluster(t)
	if _, _, err := weir(t, "get", "sources", "git", "-o", "xml"); err == nil || !strings.Contains(err.Error(), `unknown output format "xml"`) {
		t.Errorf("err = %v", err)
	}
}

// fakeController answers reconcile requests for GitRepositories in c, as
// source-controller would, until the test ends: it copies requestedAt to
// status.lastHandledReconcileAt and sets Ready with outcome.
func fakeController(t *testing.T, c client.Client, outcome repoOption) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var list sourcev1.GitRepositoryList
			if err := c.List(ctx, &list); err == nil {
				for i := range list.Items {
					r := &list.Items[i]
					at := r.Annotations[meta.ReconcileRequestAnnotation]
					if r.Spec.Suspend || at == "" || at == r.Status.LastHandledReconcileAt {
						continue
					}
					r.Status.LastHandledReconcileAt = at
					outcome(r)
					_ = c.Status().Update(ctx, r) // a conflict is retried on the next pass
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
}

func labelled(key, value string) repoOption {
	return func(r *sourcev1.GitRepository) {
		if r.Labels == nil {
			r.Labels = map[string]string{}
		}
		r.Labels[key] = value
	}
}

// createdAgo sets the creation time and the Ready condition's transition
// time of a GitRepository.
func createdAgo(created, transitioned time.Duration) repoOption {
	return func(r *sourcev1.GitRepository) {
		r.CreationTimestamp = metav1.NewTime(time.Now().Add(-created))
		for i := range r.Status.Conditions {
			r.Status.Conditions[i].LastTransitionTime = metav1.NewTime(time.Now().Add(-transitioned))
		}
	}
}

func TestGetWideAddsReasonSinceAndAge(t *testing.T) {
	fakeCluster(t,
		gitRepo("podinfo", stored, createdAgo(72*time.Hour, 5*time.Minute)),
		gitRepo("new"),
	)

	out, _, err := weir(t, "get", "sources", "git", "-o", "wide")
	if err != nil {
		t.Fatal(err)
	}

	want := "" +
		"NAME      REVISION             SUSPENDED   READY     REASON      SINCE   AGE   MESSAGE\n" +
		"new                            False       Unknown   -           -       -     waiting to be reconciled\n" +
		"podinfo   main@sha1:01234567   False       True      Succeeded   5m      3d    stored artifact for revision 'main@sha1:01234567'\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestGetStatusSelector(t *testing.T) {
	fakeCluster(t,
		gitRepo("podinfo", stored),
		gitRepo("broken", failing("authentication required")),
		gitRepo("new"),
	)
	tests := []struct {
		selector string
		want     []string
	}{
		{"ready=false", []string{"broken"}},
		{"Ready=False", []string{"broken"}},
		{"ready=true", []string{"podinfo"}},
		{"ready=unknown", []string{"new"}},
		{"ready!=true", []string{"broken", "new"}},
		{"stalled=true", nil},
	}
	for _, tt := range tests {
		t.Run(tt.selector, func(t *testing.T) {
			out, errOut, err := weir(t, "get", "sources", "git", "--status-selector", tt.selector)
			if err != nil {
				t.Fatal(err)
			}
			if got := firstColumn(out); !slices.Equal(got, tt.want) {
				t.Errorf("listed %v, want %v\n%s%s", got, tt.want, out, errOut)
			}
			if tt.want == nil && errOut != "no GitRepository objects found in flux-system namespace\n" {
				t.Errorf("stderr %q", errOut)
			}
		})
	}

	_, _, err := weir(t, "get", "sources", "git", "--status-selector", "ready")
	if err == nil || !strings.Contains(err.Error(), "want TYPE=STATUS") {
		t.Errorf("--status-selector ready: err = %v", err)
	}
	_, _, err = weir(t, "get", "sources", "git", "--status-selector", "ready=maybe")
	if err == nil || !strings.Contains(err.Error(), "true, false or unknown") {
		t.Errorf("--status-selector ready=maybe: err = %v", err)
	}
}

// firstColumn is the first field of each row of a table, after its header.
func firstColumn(table string) []string {
	var names []string
	for i, line := range strings.Split(strings.TrimSpace(table), "\n") {
		if f := strings.Fields(line); i > 0 && len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func TestGetLabelSelector(t *testing.T) {
	fakeCluster(t,
		gitRepo("payments", stored, labelled("team", "payments")),
		gitRepo("search", stored, labelled("team", "search")),
		gitRepo("shared", stored),
	)
	for _, args := range [][]string{
		{"-l", "team=payments"},
		{"--selector", "team=payments"},
		{"--label-selector", "team=payments"}, // as flux spells it
	} {
		out, _, err := weir(t, append([]string{"get", "sources", "git"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if got := firstColumn(out); !slices.Equal(got, []string{"payments"}) {
			t.Errorf("%v: listed %v, want [payments]", args, got)
		}
	}
	out, _, err := weir(t, "get", "sources", "git", "-l", "team,team!=search")
	if err != nil {
		t.Fatal(err)
	}
	if got := firstColumn(out); !slices.Equal(got, []string{"payments"}) {
		t.Errorf("-l team,team!=search: listed %v, want [payments]", got)
	}

	if _, _, err := weir(t, "get", "sources", "git", "payments", "-l", "team=payments"); err == nil || err.Error() != "give a NAME or --selector, not both" {
		t.Errorf("NAME with -l: err = %v", err)
	}
	if _, _, err := weir(t, "get", "sources", "git", "-l", "team in (payments"); err == nil || !strings.Contains(err.Error(), `--selector "team in (payments"`) {
		t.Errorf("a broken selector: err = %v", err)
	}
}

func TestGetAllPrintsATablePerKind(t *testing.T) {
	fakeCluster(t,
		gitRepo("podinfo", stored),
		gitRepo("elsewhere", inNamespace("apps"), stored),
		&kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: "flux-system"}},
		&notificationv1beta3.Alert{
			ObjectMeta: metav1.ObjectMeta{Name: "on-call", Namespace: "flux-system"},
			Spec: notificationv1beta3.AlertSpec{
				ProviderRef:  meta.LocalObjectReference{Name: "slack"},
				EventSources: []notificationv1.CrossNamespaceObjectReference{{Kind: "Kustomization", Name: "*"}},
			},
		},
	)

	out, _, err := weir(t, "get", "all")
	if err != nil {
		t.Fatal(err)
	}

	want := "" +
		"NAME                    REVISION             SUSPENDED   READY   MESSAGE\n" +
		"gitrepository/podinfo   main@sha1:01234567   False       True    stored artifact for revision 'main@sha1:01234567'\n" +
		"\n" +
		"NAME                 REVISION   SUSPENDED   READY     MESSAGE\n" +
		"kustomization/apps              False       Unknown   waiting to be reconciled\n" +
		"\n" +
		"NAME            PROVIDER   SEVERITY   SUSPENDED   SOURCES\n" +
		"alert/on-call   slack      info       false       Kustomization/*\n" +
		"\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}

	out, _, err = weir(t, "get", "all", "-A", "--status-selector", "ready=true")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "NAMESPACE     NAME                      REVISION") ||
		!strings.Contains(out, "\napps          gitrepository/elsewhere   ") ||
		!strings.Contains(out, "\nflux-system   alert/on-call ") || strings.Contains(out, "kustomization/apps") {
		t.Errorf("get all -A --status-selector ready=true printed\n%s", out)
	}
}

func TestGetAlertsAsYAML(t *testing.T) {
	fakeCluster(t, &notificationv1beta3.Alert{
		ObjectMeta: metav1.ObjectMeta{Name: "on-call", Namespace: "flux-system"},
		Spec:       notificationv1beta3.AlertSpec{ProviderRef: meta.LocalObjectReference{Name: "slack"}},
	})

	out, _, err := weir(t, "get", "alerts", "on-call", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}

	var a notificationv1beta3.Alert
	if err := yaml.UnmarshalStrict([]byte(out), &a); err != nil {
		t.Fatalf("not an Alert in YAML: %v\n%s", err, out)
	}
	if a.APIVersion != "notification.toolkit.fluxcd.io/v1beta3" || a.Kind != "Alert" || a.Spec.ProviderRef.Name != "slack" {
		t.Errorf("got %s %s with provider %q", a.APIVersion, a.Kind, a.Spec.ProviderRef.Name)
	}
}

// The first table leaves READY room for Unknown, so that the lines after it
// keep its columns.
func TestGetWatchPrintsALinePerChange(t *testing.T) {
	c := fakeCluster(t, gitRepo("podinfo", stored), gitRepo("other", stored))
	done := make(chan struct{})
	go func() {
		// Change podinfo until the watch ends: the first change may come
		// before the watch is open.
		defer close(done)
		for ctx := t.Context(); ctx.Err() == nil; {
			r := readRepo(t, c, "podinfo")
			if r.Status.Conditions[0].Status == metav1.ConditionFalse {
				return
			}
			time.Sleep(200 * time.Millisecond)
			failing("authentication required")(r)
			if err := c.Status().Update(ctx, r); err != nil {
				t.Error(err)
				return
			}
		}
	}()

	start := time.Now()
	out, _, err := weir(t, "get", "sources", "git", "--watch", "--timeout", "2s")
	<-done
	if err != nil {
		t.Fatalf("a watch that ends at its --timeout: %v", err)
	}
	if d := time.Since(start); d < 2*time.Second || d > 10*time.Second {
		t.Errorf("the watch took %s, want its --timeout of 2s", d)
	}

	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{
		"NAME      REVISION             SUSPENDED   READY     MESSAGE",
		"other     main@sha1:01234567   False       True      stored artifact for revision 'main@sha1:01234567'",
		"podinfo   main@sha1:01234567   False       True      stored artifact for revision 'main@sha1:01234567'",
		"podinfo   main@sha1:01234567   False       False     authentication required",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("got\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}
}

func TestImpersonation(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}

	g := &globalOptions{kubeconfig: kubeconfig, asUser: "jane", asGroups: []string{"devs", "oncall"}}
	cfg, err := g.restConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Impersonate.UserName != "jane" || !slices.Equal(cfg.Impersonate.Groups, []string{"devs", "oncall"}) {
		t.Errorf("impersonating %+v, want jane in devs and oncall", cfg.Impersonate)
	}

	g = &globalOptions{kubeconfig: kubeconfig, asGroups: []string{"devs"}}
	if _, err := g.restConfig(); err == nil || !strings.Contains(err.Error(), "--as-group needs --as") {
		t.Errorf("--as-group alone: err = %v", err)
	}
}

func TestGetReceiversHaveNoRevision(t *testing.T) {
	fakeCluster(t, &notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Name: "github", Namespace: "flux-system"}})

	for _, output := range []string{"table", "wide"} {
		out, _, err := weir(t, "get", "receivers", "-o", output)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"table": "NAME     SUSPENDED   READY     MESSAGE\n" +
				"github   False       Unknown   waiting to be reconciled\n",
			"wide": "NAME     SUSPENDED   READY     REASON   SINCE   AGE   MESSAGE\n" +
				"github   False       Unknown   -        -       -     waiting to be reconciled\n",
		}[output]
		if out != want {
			t.Errorf("-o %s: got\n%s\nwant\n%s", output, out, want)
		}
	}
}
