package artifactgenerator_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A copy operation the sources cannot satisfy stalls the generator with
// a message that names the operation and what is wrong, and generates
// nothing; fixing the spec generates at once.
func TestBadCopyOperationsStall(t *testing.T) {
	f := newFixture(t, map[string]string{"deploy/app.yaml": "a: 1\n"})
	cases := []struct {
		name string
		op   swapi.CopyOperation
		want string
	}{
		{"missing-alias", copyOp("@other/deploy/**", "@artifact/"),
			"out build failed: failed to apply copy operations: failed to apply copy operation from '@other/deploy/**' to '@artifact/': source alias 'other' not found (the generator's sources are 'repo')"},
		{"no-match", copyOp("@repo/charts/*.yaml", "@artifact/"),
			"no files match pattern 'charts/*.yaml' in source 'repo'"},
		{"escape", copyOp("@repo/../../etc/passwd", "@artifact/"),
			"the path leaves the root of source 'repo'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ag := f.generator(c.name, swapi.OutputArtifact{Name: "out", Copy: []swapi.CopyOperation{c.op}})
			got := f.waitGenerator(ag, "Stalled", func(g *swapi.ArtifactGenerator) bool { return conditions.IsStalled(g) })
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready == nil || ready.Status != "False" || ready.Reason != meta.BuildFailedReason || !strings.Contains(ready.Message, c.want) {
				t.Fatalf("Ready %+v, want False/BuildFailed saying %q", ready, c.want)
			}
			if conditions.GetReason(got, meta.StalledCondition) != meta.BuildFailedReason || conditions.Has(got, meta.ReconcilingCondition) {
				t.Errorf("conditions %s, want Stalled/BuildFailed and no Reconciling", describe(got.Status.Conditions))
			}
			if ea := f.externalArtifact("out"); ea != nil && ea.Labels[swapi.ArtifactGeneratorLabel] == string(got.UID) {
				t.Errorf("a failed build generated ExternalArtifact %s", ea.Name)
			}
			if err := env.Client.Delete(context.Background(), got); err != nil {
				t.Fatal(err)
			}
		})
	}

	// The same generator, fixed.
	ag := f.generator("fixed", swapi.OutputArtifact{Name: "fixed", Copy: []swapi.CopyOperation{copyOp("@repo/charts/*.yaml", "@artifact/")}})
	f.waitGenerator(ag, "Stalled", func(g *swapi.ArtifactGenerator) bool { return conditions.IsStalled(g) })
	got := &swapi.ArtifactGenerator{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ag), got); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.OutputArtifacts[0].Copy[0].From = "@repo/deploy/*.yaml"
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatal(err)
	}
	got = f.waitReady(ag)
	if conditions.IsStalled(got) {
		t.Errorf("still Stalled: %s", describe(got.Status.Conditions))
	}
	_, files := f.waitArtifact("fixed", anyArtifact)
	if files["deploy/app.yaml"] != "a: 1\n" {
		t.Errorf("fixed holds %s", names(files))
	}
}

// A spec that cannot work (an alias used twice) stalls with source-watcher's
// reason and message; a source that does not exist yet is waited on, and
// its first artifact generates at once.
func TestValidationAndMissingSource(t *testing.T) {
	f := newFixture(t, map[string]string{"app.yaml": "a: 1\n"})
	dup := &swapi.ArtifactGenerator{}
	dup.Namespace, dup.Name = f.ns, "dup"
	dup.Spec = swapi.ArtifactGeneratorSpec{
		Sources: []swapi.SourceReference{
			{Alias: "repo", Kind: sourcev1.GitRepositoryKind, Name: "repo"},
			{Alias: "repo", Kind: sourcev1.GitRepositoryKind, Name: "other"},
		},
		OutputArtifacts: []swapi.OutputArtifact{{Name: "dup", Copy: []swapi.CopyOperation{copyOp("@repo/app.yaml", "@artifact/")}}},
	}
	if err := env.Client.Create(context.Background(), dup); err != nil {
		t.Fatal(err)
	}
	got := f.waitGenerator(dup, "Stalled", func(g *swapi.ArtifactGenerator) bool { return conditions.IsStalled(g) })
	if r, m := conditions.GetReason(got, meta.ReadyCondition), conditions.GetMessage(got, meta.ReadyCondition); r != swapi.ValidationFailedReason || m != "duplicate source alias 'repo' found" {
		t.Errorf("Ready %s: %s", r, m)
	}

	waiting := &swapi.ArtifactGenerator{}
	waiting.Namespace, waiting.Name = f.ns, "waiting"
	waiting.Spec = swapi.ArtifactGeneratorSpec{
		Sources:         []swapi.SourceReference{{Alias: "later", Kind: sourcev1.GitRepositoryKind, Name: "later"}},
		OutputArtifacts: []swapi.OutputArtifact{{Name: "later", Copy: []swapi.CopyOperation{copyOp("@later/app.yaml", "@artifact/")}}},
	}
	if err := env.Client.Create(context.Background(), waiting); err != nil {
		t.Fatal(err)
	}
	want := "get sources failed: source 'GitRepository/" + f.ns + "/later' not found"
	got = f.waitGenerator(waiting, "waiting for its source", func(g *swapi.ArtifactGenerator) bool {
		return conditions.GetReason(g, meta.ReadyCondition) == swapi.SourceFetchFailedReason
	})
	if m := conditions.GetMessage(got, meta.ReadyCondition); m != want || conditions.IsStalled(got) {
		t.Errorf("Ready message %q (stalled %v), want %q", m, conditions.IsStalled(got), want)
	}
	later := &sourcev1.GitRepository{Spec: f.src.Spec}
	later.Namespace, later.Name = f.ns, "later"
	if err := env.Client.Create(context.Background(), later); err != nil {
		t.Fatal(err)
	}
	f.waitReady(waiting)
	if _, files := f.waitArtifact("later", anyArtifact); files["app.yaml"] != "a: 1\n" {
		t.Errorf("later holds %s", names(files))
	}
}
