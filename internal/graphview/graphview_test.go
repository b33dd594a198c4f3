package graphview

import (
	"bytes"
	"encoding/xml"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/control"
	"github.com/weirhq/weir/internal/diagnose"
)

func ks(name string, ready metav1.ConditionStatus, deps ...string) *kustomizev1.Kustomization {
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: name, Generation: 1},
		Spec:       kustomizev1.KustomizationSpec{SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "flux-system"}},
		Status: kustomizev1.KustomizationStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{
			{Type: meta.ReadyCondition, Status: ready, Reason: "x", Message: "y"}}},
	}
	for _, d := range deps {
		k.Spec.DependsOn = append(k.Spec.DependsOn, meta.DependencyReference{Name: d})
	}
	return k
}

func sample() *Graph {
	g := diagnose.New([]control.Object{
		ks("infra", "True"), ks("apps", "False", "infra", "ghost"),
		&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "flux-system"}},
	})
	return Build(g, true)
}

func TestDOTAndMermaid(t *testing.T) {
	var dot, mer bytes.Buffer
	if err := WriteDOT(&dot, sample()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"Kustomization/flux-system/infra" -> "Kustomization/flux-system/apps";`,
		`"Kustomization/flux-system/ghost" -> "Kustomization/flux-system/apps";`,
		`"GitRepository/flux-system/flux-system" -> "Kustomization/flux-system/apps" [style=dashed];`,
		`label="ks flux-system/ghost", color="#6e7781", tooltip="missing", style="rounded,dashed"`,
	} {
		if !strings.Contains(dot.String(), want) {
			t.Errorf("DOT\n%s\nlacks %s", &dot, want)
		}
	}
	if err := WriteMermaid(&mer, sample()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mer.String(), "flowchart LR\n") || !strings.Contains(mer.String(), `["ks flux-system/apps"]:::failed`) ||
		strings.Count(mer.String(), " --> ") != 2 || strings.Count(mer.String(), " -.-> ") != 2 {
		t.Errorf("Mermaid\n%s", &mer)
	}
}

// The SVG is well-formed XML, draws every node, and places a dependent
// right of what it depends on.
func TestSVG(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSVG(&b, sample()); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, &b)
		}
	}
	xOf := func(id string) int {
		m := regexp.MustCompile(`<title>` + regexp.QuoteMeta(id) + `: [a-z]+</title><rect x="(\d+)"`).FindStringSubmatch(b.String())
		if m == nil {
			t.Fatalf("no node %s in\n%s", id, &b)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if xOf("Kustomization/flux-system/apps") <= xOf("Kustomization/flux-system/infra") {
		t.Errorf("apps is not drawn right of infra, which it depends on:\n%s", &b)
	}
	if n := strings.Count(b.String(), `marker-end="url(#arrow)"`); n != 4 {
		t.Errorf("%d arrows, want 4", n)
	}
}
