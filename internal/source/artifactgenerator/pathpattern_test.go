package artifactgenerator_test

import (
	"context"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// spec.pathPattern generates one ExternalArtifact per matching folder,
// named and labelled from the captures (lowercased), with the copy paths
// taking the folder names as they are; a folder added by a commit adds
// its ExternalArtifact at once.
func TestPathPatternGeneratesOnePerFolder(t *testing.T) {
	f := newFixture(t, map[string]string{
		"apps/Auth/envs/prod/app.yaml": "auth: prod\n",
		"apps/web/envs/prod/app.yaml":  "web: prod\n",
		"apps/web/envs/dev/app.yaml":   "web: dev\n",
		"apps/README.md":               "apps\n",
	})
	ag := &swapi.ArtifactGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "monorepo"},
		Spec: swapi.ArtifactGeneratorSpec{
			Sources:     []swapi.SourceReference{{Alias: "repo", Kind: sourcev1.GitRepositoryKind, Name: "repo"}},
			PathPattern: "@repo/apps/{app}/envs/{env}",
			OutputArtifacts: []swapi.OutputArtifact{{
				Name: "{app}-{env}",
				Copy: []swapi.CopyOperation{copyOp("@repo/apps/{app}/envs/{env}/**", "@artifact/")},
			}},
		},
	}
	if err := env.Client.Create(context.Background(), ag); err != nil {
		t.Fatal(err)
	}
	got := f.waitReady(ag)
	if msg := conditions.GetMessage(got, meta.ReadyCondition); msg != "reconciliation succeeded, generated 3 artifact(s)" {
		t.Errorf("Ready message %q", msg)
	}
	for name, want := range map[string]string{"auth-prod": "auth: prod\n", "web-prod": "web: prod\n", "web-dev": "web: dev\n"} {
		ea, files := f.waitArtifact(name, anyArtifact)
		if files["app.yaml"] != want {
			t.Errorf("%s holds %s", name, names(files))
		}
		if ea.Labels["app"] == "" || ea.Labels["env"] == "" {
			t.Errorf("%s labels %v, want app and env", name, ea.Labels)
		}
	}
	if ea := f.externalArtifact("auth-prod"); ea.Labels["app"] != "auth" {
		t.Errorf("auth-prod labelled app=%q, want the capture lowercased", ea.Labels["app"])
	}

	f.commit(map[string]string{"apps/api/envs/prod/app.yaml": "api: prod\n"}, "a new app")
	if _, files := f.waitArtifact("api-prod", anyArtifact); files["app.yaml"] != "api: prod\n" {
		t.Errorf("api-prod holds %s", names(files))
	}
}
