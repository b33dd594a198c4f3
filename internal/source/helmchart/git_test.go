package helmchart_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/testenv"
)

// chartFiles is a chart folder at charts/app of a Git repository, and a
// values file of the repository's own.
func chartFiles(version, greeting string) map[string]string {
	return map[string]string{
		"charts/app/Chart.yaml":  "apiVersion: v2\nname: app\nversion: " + version + "\n",
		"charts/app/values.yaml": "data:\n  greeting: " + greeting + "\n",
		"charts/app/templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n" +
			"data:\n{{ toYaml .Values.data | indent 2 }}\n",
		"env/prod.yaml": "data:\n  env: prod\n",
	}
}

// newGitSource pushes files to a new repository and creates a Ready
// GitRepository of its main branch.
func newGitSource(t *testing.T, ns string, files map[string]string) (*testenv.Repo, *sourcev1.GitRepository) {
	t.Helper()
	gs := testenv.NewGitServer(t, "", "")
	repo := gs.Repo(t, "charts")
	commit := repo.Commit("main", files, "charts")
	obj := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "charts"},
		Spec: sourcev1.GitRepositorySpec{
			URL:       gs.HTTPURL("charts"),
			Interval:  metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		},
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	waitGitRevision(t, obj, "main@sha1:"+commit.String())
	return repo, obj
}

func waitGitRevision(t *testing.T, obj *sourcev1.GitRepository, revision string) *sourcev1.GitRepository {
	t.Helper()
	return waitObject(t, obj, "GitRepository at "+revision, func(o *sourcev1.GitRepository) bool {
		return conditions.IsReady(o) && o.Status.Artifact != nil && o.Status.Artifact.Revision == revision
	})
}

func TestAChartFromAGitRepositoryPath(t *testing.T) {
	ns := env.Namespace(t)
	repo, git := newGitSource(t, ns, chartFiles("0.1.0", "hello"))

	obj := newHelmChart(t, ns, "app", gitRepoRef("charts"), "./charts/app", "", nil)
	got := waitRevision(t, obj, "0.1.0")
	ready := conditions.Get(got, meta.ReadyCondition)
	if ready.Reason != sourcev1.ChartPackageSucceededReason || ready.Message != "packaged 'app' chart with version '0.1.0'" {
		t.Errorf("Ready %s %q", ready.Reason, ready.Message)
	}
	git = waitObject(t, git, "the GitRepository", func(*sourcev1.GitRepository) bool { return true })
	if got.Status.ObservedSourceArtifactRevision != git.Status.Artifact.Revision {
		t.Errorf("observed source revision %q, want %q", got.Status.ObservedSourceArtifactRevision, git.Status.Artifact.Revision)
	}
	files := testenv.TarFiles(t, testenv.Download(t, got.Status.Artifact))
	if _, ok := files["app/templates/configmap.yaml"]; !ok || !strings.Contains(files["app/Chart.yaml"], "version: 0.1.0") {
		t.Errorf("the package holds %v", files)
	}
	stored := *got.Status.Artifact

	// As in Flux, a commit that keeps the chart's version keeps the
	// artifact under the ChartVersion strategy...
	commit := repo.Commit("main", map[string]string{"charts/app/values.yaml": "data:\n  greeting: changed\n"}, "values")
	requestReconcile(t, git)
	got = waitChart(t, obj, "the chart to see the new commit", func(o *sourcev1.HelmChart) bool {
		return o.Status.ObservedSourceArtifactRevision == "main@sha1:"+commit.String() && conditions.IsReady(o)
	})
	if got.Status.Artifact.Digest != stored.Digest || !got.Status.Artifact.LastUpdateTime.Equal(&stored.LastUpdateTime) {
		t.Errorf("the same chart version was packaged again: %+v", got.Status.Artifact)
	}

	// ...and a new version is a new artifact, at once.
	repo.Commit("main", map[string]string{"charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.2.0\n"}, "bump")
	requestReconcile(t, git)
	got = waitRevision(t, obj, "0.2.0")
	if values := testenv.TarFiles(t, testenv.Download(t, got.Status.Artifact))["app/values.yaml"]; !strings.Contains(values, "changed") {
		t.Errorf("0.2.0 has values.yaml %q", values)
	}
}

func TestTheRevisionStrategyMakesEachCommitAVersion(t *testing.T) {
	ns := env.Namespace(t)
	repo, git := newGitSource(t, ns, chartFiles("0.1.0", "hello"))
	git = waitObject(t, git, "the GitRepository", func(*sourcev1.GitRepository) bool { return true })
	first := strings.TrimPrefix(git.Status.Artifact.Revision, "main@sha1:")

	obj := newHelmChart(t, ns, "app", gitRepoRef("charts"), "charts/app", "", func(o *sourcev1.HelmChart) {
		o.Spec.ReconcileStrategy = sourcev1.ReconcileStrategyRevision
	})
	waitRevision(t, obj, "0.1.0+"+first[:12])

	commit := repo.Commit("main", map[string]string{"charts/app/values.yaml": "data:\n  greeting: changed\n"}, "values")
	requestReconcile(t, git)
	got := waitRevision(t, obj, "0.1.0+"+commit.String()[:12])
	if !strings.Contains(testenv.TarFiles(t, testenv.Download(t, got.Status.Artifact))["app/Chart.yaml"], "version: 0.1.0+"+commit.String()[:12]) {
		t.Error("Chart.yaml does not carry the commit")
	}
}

func TestValuesFilesAreReadFromTheGitSourceRoot(t *testing.T) {
	ns := env.Namespace(t)
	newGitSource(t, ns, chartFiles("0.1.0", "hello"))
	obj := newHelmChart(t, ns, "app", gitRepoRef("charts"), "charts/app", "", func(o *sourcev1.HelmChart) {
		o.Spec.ValuesFiles = []string{"charts/app/values.yaml", "env/prod.yaml"}
	})
	got := waitRevision(t, obj, "0.1.0+1")
	var values map[string]map[string]string
	if err := yaml.Unmarshal([]byte(testenv.TarFiles(t, testenv.Download(t, got.Status.Artifact))["app/values.yaml"]), &values); err != nil {
		t.Fatal(err)
	}
	if values["data"]["greeting"] != "hello" || values["data"]["env"] != "prod" {
		t.Errorf("merged values %v", values)
	}
}

func TestLocalDependenciesArePackagedWithTheChart(t *testing.T) {
	ns := env.Namespace(t)
	files := chartFiles("0.1.0", "hello")
	files["charts/app/Chart.yaml"] += "dependencies:\n- name: lib\n  version: \">=1.0.0\"\n  repository: file://../lib\n"
	files["charts/lib/Chart.yaml"] = "apiVersion: v2\nname: lib\nversion: 1.2.0\n"
	files["charts/lib/templates/secret.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lib\n"
	newGitSource(t, ns, files)
	got := waitRevision(t, newHelmChart(t, ns, "app", gitRepoRef("charts"), "charts/app", "", nil), "0.1.0")
	packaged := testenv.TarFiles(t, testenv.Download(t, got.Status.Artifact))
	if _, ok := packaged["app/charts/lib/Chart.yaml"]; !ok {
		t.Errorf("the dependency is not in the package: %v", packaged)
	}

	// A dependency from a chart repository must be vendored.
	files["charts/other/Chart.yaml"] = "apiVersion: v2\nname: other\nversion: 0.1.0\ndependencies:\n- name: redis\n  version: 1.x\n  repository: https://charts.example.com\n"
	ns2 := env.Namespace(t)
	newGitSource(t, ns2, files)
	failed := waitNotReady(t, newHelmChart(t, ns2, "other", gitRepoRef("charts"), "charts/other", "", nil))
	if r := conditions.Get(failed, meta.ReadyCondition); r.Reason != "DependencyBuildError" || !strings.Contains(r.Message, "dependency 'redis' (https://charts.example.com) is not in the chart's charts/ folder") {
		t.Errorf("Ready %s %q", r.Reason, r.Message)
	}
}

func TestAPathThatIsNotAChartIsStalled(t *testing.T) {
	ns := env.Namespace(t)
	newGitSource(t, ns, chartFiles("0.1.0", "hello"))
	got := waitNotReady(t, newHelmChart(t, ns, "app", gitRepoRef("charts"), "charts/nothing", "", nil))
	r := conditions.Get(got, meta.ReadyCondition)
	if r.Reason != "InvalidChartReference" || r.Message != "invalid chart reference: no chart at path 'charts/nothing' in the source" || !conditions.IsStalled(got) {
		t.Errorf("Ready %s %q stalled %v", r.Reason, r.Message, conditions.IsStalled(got))
	}
}
