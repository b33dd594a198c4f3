package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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

// weir plan --cluster compares the working tree with what the live
// cluster runs: each object is dry-run applied on the API server, so an
// unchanged object shows nothing, an edited one its change, a new one a
// create, and one removed from the tree a prune by its Kustomization.
func TestPlanAgainstTheLiveCluster(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	git := testenv.NewGitServer(t, "", "")
	repo := git.Repo(t, "fleet")
	ks := `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: ` + ns + `
spec:
  interval: 1h
  path: ./apps
  prune: true
  targetNamespace: ` + ns + `
  sourceRef: {kind: GitRepository, name: flux-system}
`
	deploy := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx:1.27}]}
`
	commit := repo.Commit("main", map[string]string{
		"clusters/test/apps.yaml": ks,
		"apps/settings.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {colour: blue}\n",
		"apps/web.yaml":           deploy,
	}, "the fleet").String()
	createGitRepository(t, ns, "flux-system", git.HTTPURL("fleet"), "main")
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: time.Hour}, Path: "./apps", Prune: true, TargetNamespace: ns,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "flux-system"},
		},
	}
	if err := env.Client.Create(ctx, k); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 60*time.Second, func() string {
		got := &kustomizev1.Kustomization{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(k), got); err != nil {
			return err.Error()
		}
		if !conditions.IsReady(got) || got.Status.LastAppliedRevision != "main@sha1:"+commit {
			return "Kustomization apps is not Ready at the commit: " + conditions.GetMessage(got, meta.ReadyCondition)
		}
		return ""
	})

	dir := repo.Dir()
	args := []string{"plan", dir, "--cluster", "--sync-root", "clusters/test", "--format", "json"}
	code, out, errOut := runWeir(t, args...)
	if code != 0 {
		t.Fatalf("weir plan --cluster exited %d\n%s%s", code, out, errOut)
	}
	var p planJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(p.Owners) != 0 {
		t.Fatalf("the tree the cluster runs planned changes: %s", out)
	}

	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("apps/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {colour: green}\n")
	write("apps/svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n")
	if err := os.Remove(filepath.Join(dir, "apps", "web.yaml")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runWeir(t, args...)
	if code != 0 {
		t.Fatalf("weir plan --cluster exited %d\n%s%s", code, out, errOut)
	}
	p = planJSON{}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, o := range p.Owners {
		for _, c := range o.Changes {
			got[o.Kind+" "+o.Name+": "+c.Action+" "+c.Kind+"/"+c.Name] = c.Diff
		}
	}
	want := []string{"Kustomization apps: update ConfigMap/settings", "Kustomization apps: create Service/web", "Kustomization apps: prune Deployment/web"}
	if len(got) != len(want) {
		t.Errorf("the plan has %d changes, want %d: %v", len(got), len(want), keysOf(got))
	}
	for _, w := range want {
		if _, ok := got[w]; !ok {
			t.Errorf("the plan lacks %q: %v", w, keysOf(got))
		}
	}
	diff := got["Kustomization apps: update ConfigMap/settings"]
	wantIn(t, "the ConfigMap's diff", diff, "-  colour: blue", "+  colour: green")
	wantNotIn(t, "the ConfigMap's diff", diff, "managedFields", "resourceVersion")

	// The text form, as a user reads it.
	_, out, _ = runWeir(t, "plan", dir, "--cluster", "--sync-root", "clusters/test", "--color", "never")
	wantIn(t, "weir plan --cluster", out, "Plan: the cluster → working tree", "Kustomization "+ns+"/apps: 1 to create, 1 to update, 1 to prune")
	if strings.Contains(out, "\x1b[") {
		t.Error("--color never printed colours")
	}
}
