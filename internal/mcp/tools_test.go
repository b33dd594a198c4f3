package mcp_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	controlplanev1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/mcp"
)

var readTools = []string{
	"build_kustomization", "diff_kustomization", "explain_not_ready", "get_dependency_graph", "get_flux_events",
	"get_flux_instance", "get_flux_logs", "get_flux_resources", "trace_flux_object",
}

var writeTools = []string{
	"reconcile_flux_helmrelease", "reconcile_flux_kustomization", "reconcile_flux_source",
	"resume_flux_reconciliation", "suspend_flux_reconciliation",
}

type resource struct {
	Kind, Namespace, Name, Ready, Reason, Message, Revision string
	Suspended                                               bool
}

// TestEveryToolOnARealChain calls each tool on the chain of main_test.go
// and checks what a user would check; every result is then searched for
// the chain's secret values.
func TestEveryToolOnARealChain(t *testing.T) {
	c := newChain(t)
	ns := c.ns
	var log callLog
	cs := connect(t, mcp.Options{Logger: testLogger(t, &log)})
	var results []result
	run := func(tool string, args map[string]any) result {
		t.Helper()
		r := call(t, cs, tool, args)
		results = append(results, r)
		return r
	}
	find := func(list []resource, kind, name string) resource {
		t.Helper()
		for _, r := range list {
			if r.Kind == kind && r.Name == name {
				return r
			}
		}
		t.Fatalf("no %s %s in %+v", kind, name, list)
		return resource{}
	}

	t.Run("every tool is listed", func(t *testing.T) {
		got := toolNames(t, cs)
		slices.Sort(got)
		want := slices.Sorted(slices.Values(append(slices.Clone(readTools), writeTools...)))
		if !slices.Equal(got, want) {
			t.Errorf("tools %v, want %v", got, want)
		}
	})

	t.Run("get_flux_resources", func(t *testing.T) {
		var out struct{ Resources []resource }
		decode(t, run("get_flux_resources", map[string]any{"namespace": ns}), &out)
		app := find(out.Resources, "Kustomization", "app")
		if app.Ready != "True" || app.Revision != "main@sha1:"+c.commit || app.Suspended {
			t.Errorf("app: %+v", app)
		}
		if repo := find(out.Resources, "GitRepository", "repo"); repo.Ready != "True" || repo.Revision != "main@sha1:"+c.commit {
			t.Errorf("repo: %+v", repo)
		}
		decode(t, run("get_flux_resources", map[string]any{"namespace": ns, "status": "not-ready"}), &out)
		if len(out.Resources) != 1 || out.Resources[0].Name != "waiter" || !strings.Contains(out.Resources[0].Message, "ghost") {
			t.Errorf("not ready: %+v, want waiter, waiting for ghost", out.Resources)
		}
		decode(t, run("get_flux_resources", map[string]any{"kind": "ks", "name": "app"}), &out)
		if len(out.Resources) != 1 || out.Resources[0].Namespace != ns {
			t.Errorf("ks app: %+v", out.Resources)
		}
	})

	t.Run("explain_not_ready", func(t *testing.T) {
		var out struct {
			Explanations []struct {
				Object, State, Text, Fix string
				Chain                    []struct{ Object, Relation, State string }
			}
		}
		decode(t, run("explain_not_ready", map[string]any{"kind": "ks", "name": "waiter", "namespace": ns}), &out)
		if len(out.Explanations) != 1 {
			t.Fatalf("explanations %+v", out.Explanations)
		}
		e := out.Explanations[0]
		last := e.Chain[len(e.Chain)-1]
		if e.State != "waiting" || last.Object != "Kustomization "+ns+"/ghost" || last.State != "missing" ||
			!strings.Contains(e.Text, "which does not exist") || !strings.HasPrefix(e.Fix, "Create Kustomization "+ns+"/ghost") {
			t.Errorf("explanation %+v", e)
		}
		decode(t, run("explain_not_ready", map[string]any{"namespace": ns}), &out)
		if len(out.Explanations) != 1 || out.Explanations[0].Object != "Kustomization "+ns+"/waiter" {
			t.Errorf("every object not Ready: %+v, want waiter alone", out.Explanations)
		}
		if r := call(t, cs, "explain_not_ready", map[string]any{"kind": "ks", "name": "nothing", "namespace": ns}); !r.isError {
			t.Errorf("explaining a missing object is no tool error: %+v", r)
		}
	})

	t.Run("trace_flux_object", func(t *testing.T) {
		var out struct {
			Managed  bool
			Chain    []map[string]string
			Warnings []string
		}
		decode(t, run("trace_flux_object", map[string]any{"kind": "configmap", "name": "settings", "namespace": ns}), &out)
		if !out.Managed || len(out.Chain) != 3 || out.Chain[1]["Kustomization"] != "app" ||
			out.Chain[2]["GitRepository"] != "repo" || out.Chain[2]["Revision"] != "main@sha1:"+c.commit || len(out.Warnings) != 0 {
			t.Errorf("trace %+v", out)
		}
	})

	t.Run("get_flux_events", func(t *testing.T) {
		var out struct {
			Events []struct{ Type, Reason, Kind, Name, Message string }
		}
		decode(t, run("get_flux_events", map[string]any{"namespace": ns, "kind": "ks", "name": "app"}), &out)
		found := false
		for _, e := range out.Events {
			if e.Kind != "Kustomization" || e.Name != "app" {
				t.Errorf("event about %s/%s", e.Kind, e.Name)
			}
			found = found || strings.Contains(e.Message, "ConfigMap/"+ns+"/settings created")
		}
		if !found {
			t.Errorf("no event tells the ConfigMap was created: %+v", out.Events)
		}
	})

	t.Run("get_flux_logs", func(t *testing.T) {
		var out struct{ Lines []string }
		decode(t, run("get_flux_logs", map[string]any{"kind": "ks", "name": "apps", "level": "error"}), &out)
		if len(out.Lines) != 2 || !strings.Contains(out.Lines[1], "error Kustomization/flux-system.apps - Reconciler error: path './nope' not found") {
			t.Errorf("lines %q", out.Lines)
		}
	})

	t.Run("get_dependency_graph", func(t *testing.T) {
		var out struct {
			Nodes []struct {
				resource
				DependsOn []string `json:"depends_on"`
				Level     int
			}
			Missing, Cycles []string
		}
		decode(t, run("get_dependency_graph", map[string]any{"namespace": ns}), &out)
		levels := map[string]int{}
		for _, n := range out.Nodes {
			levels[n.Name] = n.Level
			if n.Name == "waiter" && !slices.Equal(n.DependsOn, []string{"Kustomization/" + ns + "/app", "Kustomization/" + ns + "/ghost"}) {
				t.Errorf("waiter depends on %v", n.DependsOn)
			}
		}
		if levels["app"] >= levels["waiter"] {
			t.Errorf("levels %v: app should come before waiter", levels)
		}
		if !slices.Equal(out.Missing, []string{"Kustomization/" + ns + "/ghost"}) || len(out.Cycles) != 0 {
			t.Errorf("missing %v, cycles %v", out.Missing, out.Cycles)
		}
	})

	t.Run("get_flux_instance", func(t *testing.T) {
		if r := run("get_flux_instance", map[string]any{"namespace": ns}); !r.isError || !strings.Contains(r.text, "no FluxInstance in namespace "+ns) {
			t.Errorf("without an instance: %+v", r)
		}
		create(t, &controlplanev1.FluxInstance{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flux", Annotations: map[string]string{controlplanev1.ReconcileAnnotation: controlplanev1.DisabledValue}},
			Spec:       controlplanev1.FluxInstanceSpec{Distribution: controlplanev1.Distribution{Version: "2.x", Registry: "ghcr.io/fluxcd"}},
		})
		var out struct{ Instance map[string]any }
		decode(t, run("get_flux_instance", map[string]any{"namespace": ns}), &out)
		spec, _ := out.Instance["spec"].(map[string]any)
		dist, _ := spec["distribution"].(map[string]any)
		if out.Instance["kind"] != "FluxInstance" || dist["version"] != "2.x" {
			t.Errorf("instance %v", out.Instance)
		}
	})

	t.Run("build_kustomization from the source", func(t *testing.T) {
		var out struct {
			From    string
			Objects int
			YAML    string
		}
		decode(t, run("build_kustomization", map[string]any{"name": "app", "namespace": ns}), &out)
		if out.Objects != 2 || !strings.Contains(out.From, "main@sha1:"+c.commit) {
			t.Errorf("built %d objects from %q", out.Objects, out.From)
		}
		for _, want := range []string{"kind: ConfigMap", "name: settings", "greeting: '[redacted]'", "kind: Secret", "**SOPS**", "kustomize.toolkit.fluxcd.io/name: app"} {
			if !strings.Contains(out.YAML, want) {
				t.Errorf("the build lacks %q:\n%s", want, out.YAML)
			}
		}
	})

	t.Run("build_kustomization from a local folder", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, ".git/HEAD"), "ref: refs/heads/main\n")
		writeFile(t, filepath.Join(root, "clusters/local/app.yaml"), "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: app\n  namespace: flux-system\nspec:\n  interval: 1h\n  path: ./apps\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n")
		writeFile(t, filepath.Join(root, "apps/password.yaml"), "apiVersion: v1\nkind: Secret\nmetadata:\n  name: password\nstringData:\n  password: "+renderedSecret+"\n")
		var out struct {
			From    string
			Objects int
			YAML    string
		}
		decode(t, run("build_kustomization", map[string]any{"name": "app", "path": filepath.Join(root, "apps")}), &out)
		if out.Objects != 1 || !strings.Contains(out.YAML, "**SOPS**") || !strings.Contains(out.From, "folder") {
			t.Errorf("built %d objects from %s:\n%s", out.Objects, out.From, out.YAML)
		}
	})

	t.Run("diff_kustomization", func(t *testing.T) {
		type diff struct {
			Changed bool
			Created []string
			Drifted []struct {
				Object  string
				Changes []string
			}
			Deleted []string
		}
		var out diff
		decode(t, run("diff_kustomization", map[string]any{"name": "app", "namespace": ns}), &out)
		if out.Changed {
			t.Errorf("the cluster is as the source says, yet: %+v", out)
		}
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil {
			t.Fatal(err)
		}
		cm.Data["greeting"] = "edited by hand"
		if err := env.Client.Update(context.Background(), cm); err != nil {
			t.Fatal(err)
		}
		decode(t, run("diff_kustomization", map[string]any{"name": "app", "namespace": ns}), &out)
		if !out.Changed || len(out.Drifted) != 1 || out.Drifted[0].Object != "ConfigMap/"+ns+"/settings" ||
			!slices.Contains(out.Drifted[0].Changes, "replace /data/greeting: [redacted]") {
			t.Errorf("after an edit: %+v", out)
		}
	})

	t.Run("reconcile_flux_kustomization with its source", func(t *testing.T) {
		h := c.repo.Commit("main", map[string]string{"apps/more.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: more\n"}, "more")
		var out struct {
			Outcome string
			Source  struct{ Outcome string }
		}
		decode(t, run("reconcile_flux_kustomization", map[string]any{"name": "app", "namespace": ns, "with_source": true}), &out)
		if out.Outcome != "applied revision main@sha1:"+h.String() || out.Source.Outcome != "fetched revision main@sha1:"+h.String() {
			t.Errorf("outcome %+v, want the new commit %s fetched and applied", out, h)
		}
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "more"}, cm); err != nil {
			t.Errorf("the new commit's ConfigMap: %v", err)
		}
		decode(t, run("reconcile_flux_kustomization", map[string]any{"name": "app", "namespace": ns, "wait": false}), &out)
		if out.Outcome != "requested" {
			t.Errorf("without waiting: %+v", out)
		}
	})

	t.Run("reconcile_flux_source", func(t *testing.T) {
		var out struct{ Outcome string }
		decode(t, run("reconcile_flux_source", map[string]any{"kind": "git", "name": "repo", "namespace": ns}), &out)
		if !strings.HasPrefix(out.Outcome, "fetched revision main@sha1:") {
			t.Errorf("outcome %q", out.Outcome)
		}
		if r := run("reconcile_flux_source", map[string]any{"kind": "ks", "name": "app", "namespace": ns}); !r.isError || !strings.Contains(r.text, "not a source kind") {
			t.Errorf("a Kustomization as a source: %+v", r)
		}
	})

	t.Run("reconcile_flux_helmrelease", func(t *testing.T) {
		r := run("reconcile_flux_helmrelease", map[string]any{"name": "nope", "namespace": ns})
		if !r.isError || !strings.Contains(r.text, "HelmRelease "+ns+"/nope not found") {
			t.Errorf("a missing HelmRelease: %+v", r)
		}
	})

	t.Run("suspend and resume", func(t *testing.T) {
		var out resource
		decode(t, run("suspend_flux_reconciliation", map[string]any{"kind": "Kustomization", "name": "app", "namespace": ns}), &out)
		if !out.Suspended {
			t.Errorf("after suspend: %+v", out)
		}
		if r := run("reconcile_flux_kustomization", map[string]any{"name": "app", "namespace": ns}); !r.isError || !strings.Contains(r.text, "suspended") {
			t.Errorf("reconciling a suspended Kustomization: %+v", r)
		}
		decode(t, run("resume_flux_reconciliation", map[string]any{"kind": "ks", "name": "app", "namespace": ns}), &out)
		if out.Suspended {
			t.Errorf("after resume: %+v", out)
		}
	})

	t.Run("a bad argument is a tool error", func(t *testing.T) {
		r := run("suspend_flux_reconciliation", map[string]any{"kind": "Widget", "name": "app"})
		if !r.isError || !strings.Contains(r.text, `unknown kind "Widget"`) {
			t.Errorf("got %+v", r)
		}
		if r := run("get_flux_resources", map[string]any{"status": "sleepy"}); !r.isError {
			t.Errorf("got %+v", r)
		}
	})

	t.Run("every call is logged", func(t *testing.T) {
		l := log.String()
		for _, want := range []string{`"tool"="get_flux_resources"`, `"tool"="diff_kustomization"`, `"outcome"="ok"`, `"outcome"="error"`, `"duration"=`, `"arguments"="{\"kind\":\"Widget\",\"name\":\"app\"}"`} {
			if !strings.Contains(l, want) {
				t.Errorf("the log lacks %s:\n%s", want, l)
			}
		}
	})

	t.Run("no secret value in any result", func(t *testing.T) {
		if len(results) < 20 {
			t.Fatalf("only %d results to search", len(results))
		}
		for _, r := range results {
			for _, secret := range []string{renderedSecret, substitutedSecret} {
				for _, form := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret))} {
					if strings.Contains(r.text, form) {
						t.Errorf("%s returned a secret value: %s", r.tool, r.text)
					}
				}
			}
		}
		if strings.Contains(log.String(), renderedSecret) || strings.Contains(log.String(), substitutedSecret) {
			t.Error("a secret value was logged")
		}
	})

	t.Run("read-only", func(t *testing.T) {
		ro := connect(t, mcp.Options{ReadOnly: true})
		got := toolNames(t, ro)
		slices.Sort(got)
		if !slices.Equal(got, readTools) {
			t.Errorf("read-only tools %v, want %v", got, readTools)
		}
		before := annotation(t, ns, "app")
		_, err := ro.CallTool(context.Background(), &sdk.CallToolParams{Name: "reconcile_flux_kustomization", Arguments: map[string]any{"name": "app", "namespace": ns}})
		if err == nil || !strings.Contains(err.Error(), "reconcile_flux_kustomization") {
			t.Errorf("a write call on a read-only server: %v", err)
		}
		if after := annotation(t, ns, "app"); after != before {
			t.Errorf("the read-only server requested a reconcile (%s -> %s)", before, after)
		}
	})
}

func annotation(t *testing.T, ns, name string) string {
	t.Helper()
	ks := &kustomizev1.Kustomization{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, ks); err != nil {
		t.Fatal(err)
	}
	return ks.Annotations[meta.ReconcileRequestAnnotation]
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
