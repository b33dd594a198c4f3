package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

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
		WithScheme(kube.Scheme).
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
	if _, _, err := weir(t, "get", "sources", "git", "-o", "wide"); err == nil || !strings.Contains(err.Error(), `unknown output format "wide"`) {
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
