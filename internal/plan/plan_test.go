package plan

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func deployment(t *testing.T, name, image, app string) *unstructured.Unstructured {
	return obj(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: `+name+`, namespace: apps}
spec:
  selector: {matchLabels: {app: `+app+`}}
  template:
    metadata: {labels: {app: `+app+`}}
    spec: {containers: [{name: app, image: `+image+`}]}
`)
}

func ks(name string, prune bool, objects ...*unstructured.Unstructured) *Owner {
	return &Owner{Cluster: "main", Kind: KindKustomization, Namespace: "flux-system", Name: name, Prune: prune, Objects: objects}
}

func kustomizationObject(t *testing.T, name string) *unstructured.Unstructured {
	return obj(t, "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: "+name+", namespace: flux-system}\nspec: {path: ./"+name+", prune: true}\n")
}

func find(p *Plan, owner string) *OwnerPlan {
	for _, o := range p.Owners {
		if o.Kind+" "+o.Namespace+"/"+o.Name == owner {
			return o
		}
	}
	return nil
}

func TestCompareUpdatesOnlyWhatChanged(t *testing.T) {
	from := []*Owner{ks("apps", true, deployment(t, "web", "web:1", "web"), deployment(t, "api", "api:1", "api"))}
	to := []*Owner{ks("apps", true, deployment(t, "web", "web:2", "web"), deployment(t, "api", "api:1", "api"))}
	p := Compare(from, to)
	o := find(p, "Kustomization flux-system/apps")
	if o == nil || len(o.Changes) != 1 {
		t.Fatalf("want one change under apps, got %+v", p.Owners)
	}
	c := o.Changes[0]
	if c.Action != Update || c.ID() != "Deployment/apps/web" {
		t.Fatalf("want an update of Deployment/apps/web, got %s %s", c.Action, c.ID())
	}
	if !strings.Contains(c.Diff, "-      - image: web:1") || !strings.Contains(c.Diff, "+      - image: web:2") {
		t.Fatalf("the diff does not show the image change:\n%s", c.Diff)
	}
	if p.Totals[Update] != 1 || p.Changed() != true {
		t.Fatalf("totals %v", p.Totals)
	}
}

func TestCompareSelectorChangeIsAReplacement(t *testing.T) {
	from := []*Owner{ks("apps", true, deployment(t, "web", "web:1", "web"))}
	to := []*Owner{ks("apps", true, deployment(t, "web", "web:1", "frontend"))}
	c := find(Compare(from, to), "Kustomization flux-system/apps").Changes[0]
	if c.Action != Replace || len(c.Immutable) != 1 || c.Immutable[0] != "spec.selector" {
		t.Fatalf("want a replacement for spec.selector, got %s %v", c.Action, c.Immutable)
	}
	if !strings.Contains(c.Note, "spec.force") {
		t.Fatalf("the note does not say how to force it: %s", c.Note)
	}
	forced := ks("apps", true, deployment(t, "web", "web:1", "frontend"))
	forced.Force = true
	c = find(Compare(from, []*Owner{forced}), "Kustomization flux-system/apps").Changes[0]
	if !strings.Contains(c.Note, "deleted and created again") {
		t.Fatalf("with force the note should say it is recreated: %s", c.Note)
	}
}

func TestComparePruneFollowsTheOwners(t *testing.T) {
	web, api := deployment(t, "web", "web:1", "web"), deployment(t, "api", "api:1", "api")
	// A removed app: its Kustomization is pruned by its parent, which
	// deletes the app's objects when the app prunes.
	from := []*Owner{
		ks("root", true, kustomizationObject(t, "web"), kustomizationObject(t, "api")),
		ks("web", true, web),
		ks("api", false, api),
	}
	to := []*Owner{ks("root", true, kustomizationObject(t, "api")), ks("api", false)}
	p := Compare(from, to)
	root := find(p, "Kustomization flux-system/root")
	if root == nil || len(root.Changes) != 1 || root.Changes[0].Action != Prune || root.Changes[0].ID() != "Kustomization/flux-system/web" {
		t.Fatalf("want the web Kustomization pruned by root, got %+v", root)
	}
	w := find(p, "Kustomization flux-system/web")
	if w == nil || w.State != "removed" || len(w.Changes) != 1 || w.Changes[0].Action != Prune {
		t.Fatalf("want web's Deployment pruned, got %+v", w)
	}
	// api stays but no longer renders its Deployment, without prune.
	a := find(p, "Kustomization flux-system/api")
	if a == nil || a.Changes[0].Action != Orphan || !strings.Contains(a.Changes[0].Note, "prune: false") {
		t.Fatalf("want api's Deployment left in the cluster, got %+v", a)
	}

	// A parent that does not prune leaves the removed Kustomization, and
	// so its objects, in the cluster.
	from = []*Owner{ks("root", false, kustomizationObject(t, "web")), ks("web", true, web)}
	to = []*Owner{ks("root", false)}
	p = Compare(from, to)
	if w := find(p, "Kustomization flux-system/web"); w == nil || w.Changes[0].Action != Orphan {
		t.Fatalf("want web's Deployment left when root does not prune, got %+v", w)
	}
	if p.Totals[Prune] != 0 {
		t.Fatalf("nothing should be pruned: %v", p.Totals)
	}
}

func TestCompareFailedRenderPrunesNothing(t *testing.T) {
	from := []*Owner{ks("apps", true, deployment(t, "web", "web:1", "web"))}
	broken := ks("apps", true)
	broken.Error = "kustomization.yaml: resource missing.yaml not found"
	p := Compare(from, []*Owner{broken})
	o := find(p, "Kustomization flux-system/apps")
	if o == nil || o.Error == "" || len(o.Changes) != 0 || p.Totals[Prune] != 0 || p.Failed() != 1 {
		t.Fatalf("a failed render must prune nothing and be reported, got %+v totals %v", o, p.Totals)
	}
}

func TestCompareMovedObjectIsNotPruned(t *testing.T) {
	web := deployment(t, "web", "web:1", "web")
	from := []*Owner{ks("a", true, web), ks("b", true)}
	to := []*Owner{ks("a", true), ks("b", true, web)}
	p := Compare(from, to)
	if p.Totals[Prune] != 0 {
		t.Fatalf("a moved object is not pruned: %v", p.Totals)
	}
	b := find(p, "Kustomization flux-system/b")
	if b == nil || !strings.Contains(b.Changes[0].Note, "taken over from Kustomization flux-system/a") {
		t.Fatalf("want the move noted under b, got %+v", b)
	}
}

func TestCompareMaskedSecretValues(t *testing.T) {
	secret := obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: apps}\nstringData: {password: '**SOPS**'}\n")
	from, to := ks("apps", true, secret), ks("apps", true, secret)
	from.Fingerprints = map[string]map[string]string{"apps/s": {"password": "a"}}
	to.Fingerprints = map[string]map[string]string{"apps/s": {"password": "b"}}
	c := find(Compare([]*Owner{from}, []*Owner{to}), "Kustomization flux-system/apps")
	if c == nil || len(c.Changes) != 1 || !strings.Contains(c.Changes[0].Note, "password") {
		t.Fatalf("a changed masked value must show as an update, got %+v", c)
	}
}

func TestMarkdownStaysUnderTheLimit(t *testing.T) {
	var from, to []*Owner
	for i := range 60 {
		name := "app" + strings.Repeat("x", i)
		from = append(from, ks(name, true, deployment(t, name, "img:1", name)))
		to = append(to, ks(name, true, deployment(t, name, "img:2"+strings.Repeat("9", 2000), name)))
	}
	p := Compare(from, to)
	var b bytes.Buffer
	if err := p.WriteMarkdown(&b, 20000); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	if len(md) > 20000 {
		t.Fatalf("the comment is %d bytes, over the limit", len(md))
	}
	if strings.Count(md, "<details>") != strings.Count(md, "</details>") || strings.Count(md, "```")%2 != 0 {
		t.Fatal("a section or a code fence was cut")
	}
	if !strings.Contains(md, "changes are not shown") || !strings.Contains(md, "| Cluster | Owner |") {
		t.Fatalf("want the summary table and the truncation note:\n%s", md[:500])
	}
}
