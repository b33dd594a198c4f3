package artifactgenerator_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

// chartRepoFiles is a repository that holds a chart folder, a values
// file for production and the same chart packaged with `helm package`.
func chartRepoFiles(t *testing.T) map[string]string {
	t.Helper()
	dir := testenv.WriteChart(t, "podinfo", "1.0.0", nil)
	files := map[string]string{
		"values/prod.yaml":           "data:\n  env: prod\n",
		"releases/podinfo-1.0.0.tgz": string(testenv.PackageChart(t, dir)),
	}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files["charts/podinfo/"+filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// A HelmRelease installs from an ExternalArtifact: a chart folder with
// production values merged into its values.yaml, and a chart tarball
// extracted into the artifact. The chart's version carries the artifact's
// digest, as helm-controller writes it.
func TestHelmReleaseFromExternalArtifact(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, chartRepoFiles(t))
	f.generator("charts",
		swapi.OutputArtifact{Name: "podinfo-composite", Copy: []swapi.CopyOperation{
			copyOp("@repo/charts/**", "@artifact/"),
			{From: "@repo/values/prod.yaml", To: "@artifact/podinfo/values.yaml", Strategy: swapi.MergeStrategy},
		}},
		swapi.OutputArtifact{Name: "podinfo-packaged", Copy: []swapi.CopyOperation{
			{From: "@repo/releases/*.tgz", To: "@artifact/", Strategy: swapi.ExtractStrategy},
		}},
	)
	for _, c := range []struct{ artifact, release, want string }{
		{"podinfo-composite", "composite", "env: prod"},
		{"podinfo-packaged", "packaged", "greeting: hello"},
	} {
		ea, _ := f.waitArtifact(c.artifact, anyArtifact)
		hr := &helmv2.HelmRelease{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: c.release},
			Spec: helmv2.HelmReleaseSpec{
				Interval: metav1.Duration{Duration: time.Hour},
				Timeout:  &metav1.Duration{Duration: 30 * time.Second},
				ChartRef: &helmv2.CrossNamespaceSourceReference{Kind: sourcev1.ExternalArtifactKind, Name: c.artifact},
			},
		}
		if err := env.Client.Create(ctx, hr); err != nil {
			t.Fatal(err)
		}
		digest := strings.TrimPrefix(ea.Status.Artifact.Digest, "sha256:")[:12]
		testenv.WaitFor(t, 90*time.Second, func() string {
			got := &helmv2.HelmRelease{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(hr), got); err != nil {
				return err.Error()
			}
			latest := got.Status.History.Latest()
			if !conditions.IsReady(got) || latest == nil || latest.Status != "deployed" {
				return fmt.Sprintf("HelmRelease %s: %s", c.release, describe(got.Status.Conditions))
			}
			if latest.ChartVersion != "1.0.0+"+digest {
				return fmt.Sprintf("HelmRelease %s installed chart version %s, want 1.0.0+%s", c.release, latest.ChartVersion, digest)
			}
			return ""
		})
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: c.release}, cm); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fmt.Sprint(cm.Data), strings.Replace(c.want, ": ", ":", 1)) {
			t.Errorf("release %s rendered %v, want %q", c.release, cm.Data, c.want)
		}
	}
}
