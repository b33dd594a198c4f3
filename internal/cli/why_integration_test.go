package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  replicas: 1
  selector:
    matchLabels: {app: podinfo}
  template:
    metadata:
      labels: {app: podinfo}
    spec:
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:6.7.0
`

func createKustomization(t *testing.T, ns, name, source, path string, deps ...string) {
	t.Helper()
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: time.Hour},
			RetryInterval:   &metav1.Duration{Duration: time.Hour},
			Path:            path,
			Prune:           true,
			TargetNamespace: ns,
			SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: source},
		},
	}
	for _, d := range deps {
		ks.Spec.DependsOn = append(ks.Spec.DependsOn, meta.DependencyReference{Name: d})
	}
	if err := env.Client.Create(context.Background(), ks); err != nil {
		t.Fatalf("creating Kustomization %s: %v", name, err)
	}
}

func kustomization(t *testing.T, ns, name string) *kustomizev1.Kustomization {
	t.Helper()
	ks := &kustomizev1.Kustomization{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, ks); err != nil {
		t.Fatal(err)
	}
	return ks
}

// The seed's chain three levels deep, whose bottom points at a path that
// is not in the repository: `weir why` on the top names the bottom, its
// message and the fix; without an argument it explains all three.
func TestWhyNamesTheBottomOfTheChain(t *testing.T) {
	git := testenv.NewGitServer(t, "", "")
	ns := env.Namespace(t)
	repo := git.Repo(t, "cluster")
	repo.Commit("main", map[string]string{"apps/deploy.yaml": deploymentYAML}, "first")
	createGitRepository(t, ns, "cluster", git.HTTPURL("cluster"), "main")
	createKustomization(t, ns, "infra-controllers", "cluster", "./infrastructure/controllers")
	createKustomization(t, ns, "infra-configs", "cluster", "./apps", "infra-controllers")
	createKustomization(t, ns, "apps", "cluster", "./apps", "infra-configs")
	testenv.WaitFor(t, 60*time.Second, func() string {
		bottom := kustomization(t, ns, "infra-controllers")
		if !conditions.IsFalse(bottom, meta.ReadyCondition) {
			return "infra-controllers has not failed yet"
		}
		if top := kustomization(t, ns, "apps"); conditions.GetReason(top, meta.ReadyCondition) != meta.DependencyNotReadyReason {
			return "apps is not waiting yet: " + conditions.GetMessage(top, meta.ReadyCondition)
		}
		return ""
	})
	bottomMsg := conditions.GetMessage(kustomization(t, ns, "infra-controllers"), meta.ReadyCondition)

	out := mustRunWeir(t, "why", "ks/apps", "-n", ns)
	for _, want := range []string{
		"Kustomization " + ns + "/apps is not Ready",
		"waits for Kustomization " + ns + "/infra-configs, which waits for Kustomization " + ns + "/infra-controllers, which failed",
		bottomMsg,
		"Fix: spec.path does not exist",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("weir why ks/apps printed\n%s\nwant it to contain %q", out, want)
		}
	}

	out = mustRunWeir(t, "why", "-n", ns)
	if n := strings.Count(out, " is not Ready"); n != 3 {
		t.Errorf("weir why without an argument explained %d objects, want the 3 Kustomizations:\n%s", n, out)
	}
	if strings.Contains(out, "GitRepository "+ns+"/cluster is not Ready") {
		t.Errorf("weir why explained the Ready GitRepository:\n%s", out)
	}

	// The same chain drawn: arrows from each dependency to its dependent,
	// the failed bottom in red.
	dot := mustRunWeir(t, "graph", "-n", ns)
	for _, want := range []string{
		`"Kustomization/` + ns + `/infra-controllers" -> "Kustomization/` + ns + `/infra-configs";`,
		`"Kustomization/` + ns + `/infra-configs" -> "Kustomization/` + ns + `/apps";`,
		`label="ks ` + ns + `/infra-controllers", color="#cf222e", tooltip="failed"`,
	} {
		if !strings.Contains(dot, want) {
			t.Errorf("weir graph printed\n%s\nwant %s", dot, want)
		}
	}
	if svg := mustRunWeir(t, "graph", "-n", ns, "-o", "svg"); !strings.HasPrefix(svg, "<svg ") || strings.Count(svg, `<g class="node`) != 3 {
		t.Errorf("weir graph -o svg printed\n%s", svg)
	}

	code, _, stderr := runWeir(t, "why", "ks/nothing", "-n", ns)
	if code != 1 || !strings.Contains(stderr, "Kustomization "+ns+"/nothing not found") {
		t.Errorf("weir why of a missing object: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runWeir(t, "why", "apps", "-n", ns)
	if code != 1 || !strings.Contains(stderr, "is not KIND/NAME") {
		t.Errorf("weir why apps: exit %d, stderr %q", code, stderr)
	}
}

// `weir trace` goes from a Deployment to the Kustomization that applied
// it, its GitRepository and the commit; an object nothing applied is
// refused.
func TestTraceFromADeploymentToItsCommit(t *testing.T) {
	git := testenv.NewGitServer(t, "", "")
	ns := env.Namespace(t)
	repo := git.Repo(t, "cluster")
	commit := repo.Commit("main", map[string]string{"apps/deploy.yaml": deploymentYAML}, "first").String()
	createGitRepository(t, ns, "cluster", git.HTTPURL("cluster"), "main")
	createKustomization(t, ns, "apps", "cluster", "./apps")
	testenv.WaitFor(t, 60*time.Second, func() string {
		if ks := kustomization(t, ns, "apps"); !conditions.IsReady(ks) {
			return "apps is not Ready: " + conditions.GetMessage(ks, meta.ReadyCondition)
		}
		return ""
	})

	code, out, stderr := runWeir(t, "trace", "deployment/podinfo", "-n", ns)
	// No warning: the Deployment carries the labels `flux trace` reads
	// (kustomize.toolkit.fluxcd.io/name and namespace), and the
	// Kustomization's inventory lists it.
	if code != 0 || stderr != "" {
		t.Fatalf("weir trace exited %d, stderr %q", code, stderr)
	}
	links := strings.Split(out, "---\n")
	if len(links) != 3 {
		t.Fatalf("weir trace printed %d links, want the Deployment, the Kustomization and the GitRepository:\n%s", len(links), out)
	}
	field := func(link, name string) string {
		for _, line := range strings.Split(link, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == name {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	if field(links[0], "Deployment") != "podinfo" || field(links[0], "Status") != "Managed by Flux" {
		t.Errorf("first link:\n%s", links[0])
	}
	if field(links[1], "Kustomization") != "apps" || field(links[1], "Path") != "./apps" || field(links[1], "Revision") != "main@sha1:"+commit {
		t.Errorf("Kustomization link:\n%s", links[1])
	}
	if field(links[2], "GitRepository") != "cluster" || field(links[2], "URL") != git.HTTPURL("cluster") ||
		field(links[2], "Branch") != "main" || field(links[2], "Revision") != "main@sha1:"+commit {
		t.Errorf("GitRepository link:\n%s", links[2])
	}
	// The flux CLI's form names the same object.
	if again := mustRunWeir(t, "trace", "podinfo", "--kind", "Deployment", "--api-version", "apps/v1", "-n", ns); again != out {
		t.Errorf("weir trace --kind printed\n%s\nwant the same as deployment/podinfo", again)
	}

	code, _, stderr = runWeir(t, "trace", "serviceaccount/default", "-n", ns)
	if code != 1 || !strings.Contains(stderr, "not managed by Flux") {
		t.Errorf("weir trace of an unmanaged object: exit %d, stderr %q", code, stderr)
	}
}

// `weir reconcile --all`: the source first, then each Kustomization after
// its dependencies; a branch whose root fails stops there and says so,
// and the run exits 1.
func TestReconcileAllStopsABranchWhoseRootFails(t *testing.T) {
	git := testenv.NewGitServer(t, "", "")
	ns := env.Namespace(t)
	repo := git.Repo(t, "cluster")
	commit := repo.Commit("main", map[string]string{"apps/deploy.yaml": deploymentYAML}, "first").String()
	createGitRepository(t, ns, "cluster", git.HTTPURL("cluster"), "main")
	createKustomization(t, ns, "base", "cluster", "./apps")
	createKustomization(t, ns, "app", "cluster", "./apps", "base")
	createKustomization(t, ns, "broken", "cluster", "./missing")
	createKustomization(t, ns, "after-broken", "cluster", "./apps", "broken")

	code, out, stderr := runWeir(t, "reconcile", "--all", "-n", ns)
	if code != 1 {
		t.Errorf("weir reconcile --all with a failing branch exited %d, want 1\n%s%s", code, out, stderr)
	}
	lines := strings.Split(out, "\n")
	index := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		t.Errorf("no line starts with %q in\n%s", prefix, out)
		return -1
	}
	src := index("✔ GitRepository " + ns + "/cluster: fetched revision main@sha1:" + commit)
	base := index("✔ Kustomization " + ns + "/base: applied revision main@sha1:" + commit)
	app := index("✔ Kustomization " + ns + "/app: applied revision")
	index("✗ Kustomization " + ns + "/broken: path './missing' not found")
	index("✗ Kustomization " + ns + "/after-broken: not reconciled: its dependency Kustomization " + ns + "/broken failed")
	if !(src < base && base < app) {
		t.Errorf("lines out of dependency order (source %d, base %d, app %d):\n%s", src, base, app, out)
	}
	if !strings.Contains(stderr, "3 succeeded, 1 failed, 1 not reconciled, 0 suspended") {
		t.Errorf("stderr %q, want the counts", stderr)
	}
}
