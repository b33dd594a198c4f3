package control_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/weirhq/weir/internal/control"
	"github.com/weirhq/weir/internal/kube"
)

const revision = "main@sha1:0123456789abcdef0123456789abcdef01234567"

var gitKind, _ = control.LookupKind("source git")

// gitRepository is a GitRepository in flux-system at generation 1, changed
// by the given functions.
func gitRepository(name string, changes ...func(*sourcev1.GitRepository)) *sourcev1.GitRepository {
	r := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux-system", Generation: 1},
		Spec: sourcev1.GitRepositorySpec{
			URL:      "https://git.example.com/cluster.git",
			Interval: metav1.Duration{Duration: time.Minute},
		},
	}
	for _, change := range changes {
		change(r)
	}
	return r
}

func suspended(r *sourcev1.GitRepository) { r.Spec.Suspend = true }

// readyAt gives r the status its controller writes after handling the
// request made at requestedAt: Ready with status and message, for the
// current generation.
func readyAt(requestedAt string, status metav1.ConditionStatus, message string) func(*sourcev1.GitRepository) {
	return func(r *sourcev1.GitRepository) {
		r.Status.LastHandledReconcileAt = requestedAt
		r.Status.ObservedGeneration = r.Generation
		reason := meta.SucceededReason
		if status == metav1.ConditionFalse {
			reason = "GitOperationFailed"
			// Flux does not move observedGeneration on a failure; the
			// condition's own observedGeneration tells.
			r.Status.ObservedGeneration = r.Generation - 1
		} else {
			r.Status.Artifact = &meta.Artifact{Revision: revision, Path: "x.tar.gz", URL: "http://x/x.tar.gz", Digest: "sha256:00", LastUpdateTime: metav1.Now()}
		}
		apimeta.SetStatusCondition(&r.Status.Conditions, metav1.Condition{
			Type: meta.ReadyCondition, Status: status, Reason: reason, Message: message, ObservedGeneration: r.Generation,
		})
	}
}

func newClient(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().
		WithScheme(kube.Scheme()).
		WithObjects(objs...).
		WithStatusSubresource(&sourcev1.GitRepository{}).
		Build()
}

func read(t *testing.T, c client.Client, name string) *sourcev1.GitRepository {
	t.Helper()
	r := &sourcev1.GitRepository{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "flux-system", Name: name}, r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRequestReconcileSetsRequestedAt(t *testing.T) {
	c := newClient(gitRepository("podinfo"))
	before := time.Now()

	requestedAt, err := control.RequestReconcile(t.Context(), c, read(t, c, "podinfo"))
	if err != nil {
		t.Fatal(err)
	}

	if got := read(t, c, "podinfo").Annotations[meta.ReconcileRequestAnnotation]; got != requestedAt {
		t.Errorf("annotation %s = %q, want %q", meta.ReconcileRequestAnnotation, got, requestedAt)
	}
	at, err := time.Parse(time.RFC3339Nano, requestedAt)
	if err != nil {
		t.Fatalf("requestedAt %q is not RFC 3339: %v", requestedAt, err)
	}
	if at.Before(before.Truncate(time.Second)) || time.Since(at) > time.Minute {
		t.Errorf("requestedAt %s is not the time of the request (%s)", at, before)
	}
}

func TestRequestReconcileRefusesSuspendedObject(t *testing.T) {
	c := newClient(gitRepository("podinfo", suspended))

	_, err := control.RequestReconcile(t.Context(), c, read(t, c, "podinfo"))

	if !errors.Is(err, control.ErrSuspended) {
		t.Fatalf("err = %v, want ErrSuspended", err)
	}
	want := "cannot reconcile GitRepository flux-system/podinfo: resource is suspended; resume it first"
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if _, ok := read(t, c, "podinfo").Annotations[meta.ReconcileRequestAnnotation]; ok {
		t.Error("a suspended object was annotated")
	}
}

func TestSetSuspendFlipsSpecSuspend(t *testing.T) {
	c := newClient(gitRepository("podinfo"))

	requestedAt, err := control.SetSuspend(t.Context(), c, read(t, c, "podinfo"), true)
	if err != nil {
		t.Fatal(err)
	}
	r := read(t, c, "podinfo")
	if !r.Spec.Suspend || requestedAt != "" {
		t.Fatalf("after suspend: spec.suspend = %v, requestedAt = %q; want true and none", r.Spec.Suspend, requestedAt)
	}
	if !control.StatusOf(r).Suspended {
		t.Error("StatusOf does not report the object suspended")
	}

	requestedAt, err = control.SetSuspend(t.Context(), c, r, false)
	if err != nil {
		t.Fatal(err)
	}
	r = read(t, c, "podinfo")
	if r.Spec.Suspend {
		t.Error("after resume: spec.suspend is still true")
	}
	if got := r.Annotations[meta.ReconcileRequestAnnotation]; requestedAt == "" || got != requestedAt {
		t.Errorf("resume requested a reconcile at %q, annotation is %q", requestedAt, got)
	}
}

func TestSetSuspendOfMissingObject(t *testing.T) {
	c := newClient()
	_, err := control.SetSuspend(t.Context(), c, gitRepository("gone"), true)
	if !apierrors.IsNotFound(err) || !strings.HasPrefix(err.Error(), "suspending GitRepository flux-system/gone: ") {
		t.Errorf("err = %v, want a not-found error naming the object", err)
	}
}

func TestWaitReconciled(t *testing.T) {
	key := client.ObjectKey{Namespace: "flux-system", Name: "podinfo"}
	tests := []struct {
		name string
		// controller is what the controller writes to the status once the
		// request is made; nil writes nothing.
		controller func(requestedAt string) func(*sourcev1.GitRepository)
		wantErr    string // empty: the wait succeeds
		wantRev    string
	}{
		{
			name: "returns when the status catches up",
			controller: func(at string) func(*sourcev1.GitRepository) {
				return readyAt(at, metav1.ConditionTrue, "stored artifact for revision '"+revision+"'")
			},
			wantRev: revision,
		},
		{
			name: "fails with the Ready message",
			controller: func(at string) func(*sourcev1.GitRepository) {
				return readyAt(at, metav1.ConditionFalse, "failed to checkout and determine revision: authentication required")
			},
			wantErr: "GitRepository flux-system/podinfo failed to reconcile: failed to checkout and determine revision: authentication required",
		},
		{
			name: "an older request handled is not this one",
			controller: func(string) func(*sourcev1.GitRepository) {
				return readyAt("2020-01-01T00:00:00Z", metav1.ConditionTrue, "stored artifact")
			},
			wantErr: "has not finished reconciling (the controller has not handled the request yet: is it running?)",
		},
		{
			name: "a Ready condition of an older generation is not the outcome",
			controller: func(at string) func(*sourcev1.GitRepository) {
				return func(r *sourcev1.GitRepository) {
					readyAt(at, metav1.ConditionTrue, "stored artifact")(r)
					r.Status.Conditions[0].ObservedGeneration = 0
					r.Status.ObservedGeneration = 0
				}
			},
			wantErr: "has not finished reconciling (Ready is True: stored artifact)",
		},
		{
			name: "a reconcile under way is waited for",
			controller: func(at string) func(*sourcev1.GitRepository) {
				return func(r *sourcev1.GitRepository) {
					readyAt(at, metav1.ConditionTrue, "stored artifact")(r)
					apimeta.SetStatusCondition(&r.Status.Conditions, metav1.Condition{
						Type: meta.ReconcilingCondition, Status: metav1.ConditionTrue, Reason: meta.ProgressingReason, Message: "reconciliation in progress",
					})
				}
			},
			wantErr: "has not finished reconciling",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(gitRepository("podinfo"))
			requestedAt, err := control.RequestReconcile(t.Context(), c, read(t, c, "podinfo"))
			if err != nil {
				t.Fatal(err)
			}
			// The controller answers a little later, as a real one would.
			controllerDone := make(chan error, 1)
			go func() {
				time.Sleep(300 * time.Millisecond)
				r := &sourcev1.GitRepository{}
				if err := c.Get(context.Background(), key, r); err != nil {
					controllerDone <- err
					return
				}
				tt.controller(requestedAt)(r)
				controllerDone <- c.Status().Update(context.Background(), r)
			}()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()

			obj, err := control.WaitReconciled(ctx, c, key, gitKind, requestedAt)

			if cerr := <-controllerDone; cerr != nil {
				t.Fatalf("updating the status: %v", cerr)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("WaitReconciled: %v", err)
				}
				if got := control.StatusOf(obj).Revision; got != tt.wantRev {
					t.Errorf("revision = %q, want %q", got, tt.wantRev)
				}
				if got, want := gitKind.Outcome(obj), "fetched revision "+tt.wantRev; got != want {
					t.Errorf("Outcome = %q, want %q", got, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestWaitReconciledFailureIsAReconcileError(t *testing.T) {
	r := gitRepository("podinfo", readyAt("now", metav1.ConditionFalse, "auth failed"))
	c := newClient(r)

	_, err := control.WaitReconciled(t.Context(), c, client.ObjectKeyFromObject(r), gitKind, "now")

	var re *control.ReconcileError
	if !errors.As(err, &re) || re.Message != "auth failed" || re.Reason != "GitOperationFailed" {
		t.Errorf("err = %#v, want a ReconcileError with the Ready reason and message", err)
	}
}

func TestWaitReconciledStopsOnSuspendedObject(t *testing.T) {
	r := gitRepository("podinfo", suspended)
	c := newClient(r)
	_, err := control.WaitReconciled(t.Context(), c, client.ObjectKeyFromObject(r), gitKind, "now")
	if !errors.Is(err, control.ErrSuspended) {
		t.Errorf("err = %v, want ErrSuspended", err)
	}
}

func TestGetWordsAMissingObject(t *testing.T) {
	_, err := control.Get(t.Context(), newClient(), gitKind, client.ObjectKey{Namespace: "flux-system", Name: "x"})
	if err == nil || err.Error() != "GitRepository flux-system/x not found" || !apierrors.IsNotFound(err) {
		t.Errorf("err = %v, want \"GitRepository flux-system/x not found\"", err)
	}
}

func TestListIsSortedAndScoped(t *testing.T) {
	other := gitRepository("a")
	other.Namespace = "apps"
	c := newClient(gitRepository("zeta"), gitRepository("alpha"), other)

	objs, err := control.List(t.Context(), c, gitKind, "flux-system")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(objs); got != "flux-system/alpha flux-system/zeta" {
		t.Errorf("in flux-system: %s", got)
	}
	objs, err = control.List(t.Context(), c, gitKind, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(objs); got != "apps/a flux-system/alpha flux-system/zeta" {
		t.Errorf("in any namespace: %s", got)
	}
}

func names(objs []control.Object) string {
	var s []string
	for _, o := range objs {
		s = append(s, client.ObjectKeyFromObject(o).String())
	}
	return strings.Join(s, " ")
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		name string
		obj  *sourcev1.GitRepository
		want control.Status
	}{
		{
			name: "never reconciled",
			obj:  gitRepository("new"),
			want: control.Status{Ready: "Unknown", Message: "waiting to be reconciled"},
		},
		{
			name: "ready",
			obj:  gitRepository("ok", readyAt("t1", metav1.ConditionTrue, "stored artifact")),
			want: control.Status{Ready: "True", Reason: meta.SucceededReason, Message: "stored artifact", Revision: revision, ObservedGeneration: 1, LastHandledReconcileAt: "t1"},
		},
		{
			name: "failed and suspended",
			obj:  gitRepository("bad", readyAt("t2", metav1.ConditionFalse, "auth failed"), suspended),
			want: control.Status{Ready: "False", Reason: "GitOperationFailed", Message: "auth failed", Suspended: true, LastHandledReconcileAt: "t2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := control.StatusOf(tt.obj); got != tt.want {
				t.Errorf("StatusOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLookupKind(t *testing.T) {
	for _, name := range []string{"source git", "  Source   GIT ", "GitRepository", "gitrepository"} {
		if k, ok := control.LookupKind(name); !ok || k.Name != "GitRepository" {
			t.Errorf("LookupKind(%q) = %v, %v; want GitRepository", name, k.Name, ok)
		}
	}
	for _, name := range []string{"source oci", "OCIRepository", "ocirepository"} {
		if k, ok := control.LookupKind(name); !ok || k.Name != "OCIRepository" || k.Noun() != "source oci" {
			t.Errorf("LookupKind(%q) = %v, %v; want OCIRepository", name, k.Name, ok)
		}
	}
	for name, want := range map[string]string{
		"source helm": "HelmRepository", "helmrepository": "HelmRepository",
		"source chart": "HelmChart", "HelmChart": "HelmChart",
		"source bucket": "Bucket", "bucket": "Bucket",
	} {
		if k, ok := control.LookupKind(name); !ok || k.Name != want {
			t.Errorf("LookupKind(%q) = %v, %v; want %s", name, k.Name, ok, want)
		}
	}
	for _, name := range []string{"git", "oci", "helm", "chart", "source", "nothing"} {
		if k, ok := control.LookupKind(name); ok {
			t.Errorf("LookupKind(%q) found %s", name, k.Name)
		}
	}
}

func TestAbbreviateHashes(t *testing.T) {
	got := control.AbbreviateHashes("stored artifact for revision '" + revision + "'")
	if want := "stored artifact for revision 'main@sha1:01234567'"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func ExampleLookupKind() {
	k, _ := control.LookupKind("source git")
	fmt.Println(k.Name, "is", k.Noun(), "on the command line")
	// Output: GitRepository is source git on the command line
}
