package diagnose

import (
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/control"
)

var (
	now   = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	since = metav1.NewTime(now.Add(-3 * time.Minute))
)

func ready(status metav1.ConditionStatus, reason, msg string) []metav1.Condition {
	return []metav1.Condition{{Type: meta.ReadyCondition, Status: status, Reason: reason, Message: msg, LastTransitionTime: since}}
}

func ks(name, source string, conds []metav1.Condition, deps ...string) *kustomizev1.Kustomization {
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: name, Generation: 1},
		Spec: kustomizev1.KustomizationSpec{
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: source},
		},
		Status: kustomizev1.KustomizationStatus{ObservedGeneration: 1, Conditions: conds},
	}
	for _, d := range deps {
		k.Spec.DependsOn = append(k.Spec.DependsOn, meta.DependencyReference{Name: d})
	}
	return k
}

func git(name string, conds []metav1.Condition) *sourcev1.GitRepository {
	return &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: name, Generation: 1},
		Status:     sourcev1.GitRepositoryStatus{ObservedGeneration: 1, Conditions: conds},
	}
}

var (
	okGit     = git("flux-system", ready("True", "Succeeded", "stored artifact for revision 'main@sha1:abc'"))
	waiting   = ready("False", meta.DependencyNotReadyReason, "dependency 'flux-system/x' is not ready")
	pathError = "kustomization path not found: stat /tmp/kustomization-1/apps/missing: no such file or directory"
)

// The seed's chain, three levels deep, with a missing path at the bottom:
// asked about the top, the explanation names the bottom, its message and
// the fix for a path.
func TestExplainNamesTheBottomOfAChain(t *testing.T) {
	g := New([]control.Object{
		okGit,
		ks("apps", "flux-system", waiting, "infra-configs"),
		ks("infra-configs", "flux-system", waiting, "infra-controllers"),
		ks("infra-controllers", "flux-system", ready("False", "ReconciliationFailed", pathError)),
	})
	e := g.Explain(Ref{Kind: "Kustomization", Namespace: "flux-system", Name: "apps"})
	if len(e.Path) != 2 || e.Cause().Name != "infra-controllers" || e.Path[0].Name != "infra-configs" {
		t.Fatalf("path %+v, want infra-configs then infra-controllers", e.Path)
	}
	text := e.Text(now)
	for _, want := range []string{
		"Kustomization flux-system/apps is not Ready (since 3m0s ago).",
		"waits for Kustomization flux-system/infra-configs, which waits for Kustomization flux-system/infra-controllers",
		"which failed 3m0s ago (ReconciliationFailed): " + pathError,
		"Fix: spec.path does not exist",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("explanation\n%s\nlacks %q", text, want)
		}
	}
	if w := e.WaitingText(now); !strings.HasPrefix(w, "Waiting for Kustomization flux-system/infra-configs to be Ready; the chain is held by Kustomization flux-system/infra-controllers, which failed") {
		t.Errorf("dashboard text %q", w)
	}
}

// A Kustomization whose Git source cannot authenticate is held by the
// source, and the fix is the deploy key.
func TestExplainFollowsTheSource(t *testing.T) {
	g := New([]control.Object{
		git("flux-system", ready("False", "AuthenticationFailed", "failed to checkout and determine revision: unable to authenticate, attempted methods [none publickey]")),
		ks("cluster", "flux-system", ready("False", "ArtifactFailed", "Source artifact not found, retrying in 30s")),
	})
	e := g.Explain(Ref{Kind: "Kustomization", Namespace: "flux-system", Name: "cluster"})
	if c := e.Cause(); c.Kind != sourcev1.GitRepositoryKind || c.Relation != "its source" {
		t.Fatalf("cause %+v, want the GitRepository as its source", c)
	}
	if !strings.HasPrefix(e.Fix, "Check the deploy key") {
		t.Errorf("fix %q, want the deploy key", e.Fix)
	}
}

// A HelmRelease is followed to its HelmChart and that chart's repository.
func TestExplainFollowsAHelmReleaseToItsRepository(t *testing.T) {
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "podinfo", Generation: 1},
		Spec: helmv2.HelmReleaseSpec{Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
			Chart: "podinfo", SourceRef: helmv2.CrossNamespaceObjectReference{Kind: sourcev1.HelmRepositoryKind, Name: "podinfo", Namespace: "flux-system"}}}},
		Status: helmv2.HelmReleaseStatus{ObservedGeneration: 1, HelmChart: "flux-system/apps-podinfo",
			Conditions: ready("False", "ArtifactFailed", "HelmChart 'flux-system/apps-podinfo' is not ready")},
	}
	chart := &sourcev1.HelmChart{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "apps-podinfo", Generation: 1},
		Spec:       sourcev1.HelmChartSpec{Chart: "podinfo", SourceRef: sourcev1.LocalHelmChartSourceReference{Kind: sourcev1.HelmRepositoryKind, Name: "podinfo"}},
		Status:     sourcev1.HelmChartStatus{ObservedGeneration: 1, Conditions: ready("False", "FetchFailed", "failed to fetch index")},
	}
	repo := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "podinfo", Generation: 1},
		Status:     sourcev1.HelmRepositoryStatus{ObservedGeneration: 1, Conditions: ready("False", "FetchFailed", "dial tcp: lookup charts.example: no such host")},
	}
	e := New([]control.Object{hr, chart, repo}).Explain(Ref{Kind: helmv2.HelmReleaseKind, Namespace: "apps", Name: "podinfo"})
	if len(e.Path) != 2 || e.Path[0].Kind != sourcev1.HelmChartKind || e.Cause().Kind != sourcev1.HelmRepositoryKind {
		t.Fatalf("path %+v, want the HelmChart then the HelmRepository", e.Path)
	}
	if !strings.Contains(e.Fix, "cannot be reached") {
		t.Errorf("fix %q, want the network", e.Fix)
	}
}

// A missing dependency, a suspended one and a cycle each say so.
func TestExplainMissingSuspendedAndCycle(t *testing.T) {
	suspended := ks("infra", "flux-system", ready("True", "ReconciliationSucceeded", "Applied"))
	suspended.Spec.Suspend = true
	suspended.Status.Conditions = ready("False", "ReconciliationFailed", "x")
	g := New([]control.Object{
		okGit,
		ks("needs-ghost", "flux-system", waiting, "ghost"),
		ks("needs-suspended", "flux-system", waiting, "infra"),
		suspended,
		ks("a", "flux-system", waiting, "b"),
		ks("b", "flux-system", waiting, "a"),
	})
	e := g.Explain(Ref{Kind: "Kustomization", Namespace: "flux-system", Name: "needs-ghost"})
	if e.Cause().State != Missing || !strings.Contains(e.Text(now), "which does not exist") || !strings.HasPrefix(e.Fix, "Create Kustomization flux-system/ghost") {
		t.Errorf("missing dependency: %s", e.Text(now))
	}
	e = g.Explain(Ref{Kind: "Kustomization", Namespace: "flux-system", Name: "needs-suspended"})
	if e.Cause().State != Suspended || e.Fix != "Resume it: weir resume ks infra -n flux-system." {
		t.Errorf("suspended dependency: %s", e.Text(now))
	}
	e = g.Explain(Ref{Kind: "Kustomization", Namespace: "flux-system", Name: "a"})
	if len(e.Cycle) == 0 || !strings.Contains(e.Text(now), "the dependencies form a cycle: flux-system/a -> flux-system/b -> flux-system/a") {
		t.Errorf("cycle: %s", e.Text(now))
	}
	if got := g.NotReady(); len(got) != 5 {
		t.Errorf("NotReady = %v, want the 5 Kustomizations that are not Ready", got)
	}
}

// A Ready object says so with its revision.
// weir's own message for a missing path gets the path's fix.
func TestFixForWeirsMissingPath(t *testing.T) {
	s := Step{Ref: Ref{Kind: "Kustomization"}, State: Failed, Reason: "BuildFailed", Message: "path './infrastructure/controllers' not found in the source"}
	if f := fixFor(s, true); !strings.HasPrefix(f, "spec.path does not exist") {
		t.Errorf("fix %q", f)
	}
}

func TestExplainReady(t *testing.T) {
	k := ks("apps", "flux-system", ready("True", "ReconciliationSucceeded", "Applied revision: main@sha1:abc"))
	k.Status.LastAppliedRevision = "main@sha1:abc"
	e := New([]control.Object{k}).Explain(Ref{Kind: "Kustomization", Namespace: "flux-system", Name: "apps"})
	if got := e.Text(now); got != "Kustomization flux-system/apps is Ready at revision main@sha1:abc." {
		t.Errorf("text %q", got)
	}
}

// The dashboard's sentence for a waiting object: the dependency it waits
// for, and what holds the chain when that one waits too.
func TestWaitingText(t *testing.T) {
	g := New([]control.Object{
		okGit,
		ks("cilium", "flux-system", ready("False", "HealthCheckFailed", "health check failed after 5m0s")),
		ks("coredns", "flux-system", waiting, "cilium"),
		ks("monitoring", "flux-system", ready("True", "ReconciliationSucceeded", "Applied")),
		ks("apps", "flux-system", waiting, "monitoring", "coredns"),
		ks("ghost-user", "flux-system", waiting, "ghost"),
	})
	for _, c := range []struct{ name, want string }{
		{"coredns", "Waiting for Kustomization flux-system/cilium to be Ready; it failed 3m0s ago (HealthCheckFailed): health check failed after 5m0s."},
		{"apps", "Waiting for Kustomization flux-system/coredns to be Ready; the chain is held by Kustomization flux-system/cilium, which failed 3m0s ago (HealthCheckFailed): health check failed after 5m0s."},
		{"ghost-user", "Waiting for Kustomization flux-system/ghost, which does not exist."},
	} {
		if got := g.Explain(Ref{Kind: "Kustomization", Namespace: "flux-system", Name: c.name}).WaitingText(now); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// An object that failed for a reason of its own is its own cause, even
// when its source is not Ready too.
func TestExplainOwnFailureBeforeTheSource(t *testing.T) {
	g := New([]control.Object{
		ks("apps", "gone", ready("False", "BuildFailed", "kustomize build failed: accumulating resources: missing.yaml")),
	})
	e := g.Explain(Ref{Kind: "Kustomization", Namespace: "flux-system", Name: "apps"})
	if len(e.Path) != 0 || !strings.Contains(e.Text(now), "Failed: kustomize build failed") || !strings.HasPrefix(e.Fix, "The manifests do not build") {
		t.Errorf("explanation %s", e.Text(now))
	}
}

// A Kustomization whose Bucket's credentials are refused is held by the
// Bucket, and the fix is the Secret's keys.
func TestExplainFollowsABucketSource(t *testing.T) {
	k := ks("cluster", "manifests", ready("False", "ArtifactFailed", "Source artifact not found, retrying when 'Bucket/flux-system/manifests' has one"))
	k.Spec.SourceRef.Kind = sourcev1.BucketKind
	b := &sourcev1.Bucket{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "manifests", Generation: 1},
		Status: sourcev1.BucketStatus{ObservedGeneration: 1, Conditions: ready("False", sourcev1.BucketOperationFailedReason,
			"failed to confirm existence of 'manifests' bucket: The request signature we calculated does not match the signature you provided. (the credentials of secret 's3' were refused: check its 'accesskey' and 'secretkey')")},
	}
	e := New([]control.Object{b, k}).Explain(Ref{Kind: "Kustomization", Namespace: "flux-system", Name: "cluster"})
	if c := e.Cause(); c.Kind != sourcev1.BucketKind || c.Relation != "its source" {
		t.Fatalf("cause %+v, want the Bucket as its source", c)
	}
	if !strings.HasPrefix(e.Fix, "The S3 server refused the credentials") {
		t.Errorf("fix %q", e.Fix)
	}
}
