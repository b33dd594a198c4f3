package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The verbs flux has for ArtifactGenerators work on a live one: get, tree
// (its ExternalArtifacts with their revisions), suspend and resume (the
// source.extensions.fluxcd.io/reconcile annotation) and reconcile.
func TestArtifactGeneratorVerbs(t *testing.T) {
	s := newLiveSource(t, "monorepo")
	gen := &swapi.ArtifactGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "split"},
		Spec: swapi.ArtifactGeneratorSpec{
			Sources: []swapi.SourceReference{{Alias: "repo", Kind: sourcev1.GitRepositoryKind, Name: s.name}},
			OutputArtifacts: []swapi.OutputArtifact{
				{Name: "app", Copy: []swapi.CopyOperation{{From: "@repo/app/**", To: "@artifact/"}}},
				{Name: "all", Copy: []swapi.CopyOperation{{From: "@repo/**", To: "@artifact/"}}},
			},
		},
	}
	if err := env.Client.Create(context.Background(), gen); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(gen)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := env.Client.Get(context.Background(), key, gen); err != nil {
			t.Fatal(err)
		}
		if conditions.IsReady(gen) && len(gen.Status.Inventory) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ArtifactGenerator not Ready with two artifacts: %+v", gen.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}

	out := mustRunWeir(t, "get", "artifact", "generators", "-n", s.ns)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "split ") || !strings.Contains(lines[1], "True") {
		t.Errorf("get artifact generators: want a header and a Ready row for split:\n%s", out)
	}

	tree := mustRunWeir(t, "tree", "artifact", "generator", "split", "-n", s.ns)
	for _, want := range []string{"ArtifactGenerator/" + s.ns + "/split\n", "ExternalArtifact/" + s.ns + "/app latest@sha256:", "└── ExternalArtifact/" + s.ns + "/"} {
		if !strings.Contains(tree, want) {
			t.Errorf("tree artifact generator lacks %q:\n%s", want, tree)
		}
	}

	mustRunWeir(t, "suspend", "artifact", "generator", "split", "-n", s.ns)
	if err := env.Client.Get(context.Background(), key, gen); err != nil {
		t.Fatal(err)
	}
	if !gen.IsDisabled() {
		t.Errorf("suspend artifact generator: annotations %v, want %s: disabled", gen.Annotations, swapi.ReconcileAnnotation)
	}
	if out := mustRunWeir(t, "get", "artifact", "generator", "split", "-n", s.ns); !strings.Contains(out, " True ") {
		t.Errorf("get after suspend does not show SUSPENDED True:\n%s", out)
	}
	mustRunWeir(t, "resume", "artifact", "generator", "split", "-n", s.ns)
	if err := env.Client.Get(context.Background(), key, gen); err != nil {
		t.Fatal(err)
	}
	if gen.IsDisabled() {
		t.Errorf("resume artifact generator left it disabled: %v", gen.Annotations)
	}
	mustRunWeir(t, "reconcile", "artifact", "generator", "split", "-n", s.ns)
}
