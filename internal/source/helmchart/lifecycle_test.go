package helmchart_test

import (
	"context"
	"os"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

func TestASuspendedChartIsLeftAlone(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	repo := newHelmRepository(t, ns, "charts", hr.URL, nil)
	obj := newHelmChart(t, ns, "app", helmRepoRef("charts"), "app", "", nil)
	waitRevision(t, obj, "1.0.0")

	patchChart(t, obj, func(o *sourcev1.HelmChart) { o.Spec.Suspend = true })
	hr.AddChart(t, testenv.WriteChart(t, "app", "2.0.0", nil))
	requestReconcile(t, repo)
	time.Sleep(3 * time.Second)
	got := waitChart(t, obj, "the chart", func(*sourcev1.HelmChart) bool { return true })
	if got.Status.Artifact.Revision != "1.0.0" {
		t.Fatalf("a suspended chart moved to %s", got.Status.Artifact.Revision)
	}

	patchChart(t, obj, func(o *sourcev1.HelmChart) { o.Spec.Suspend = false })
	waitRevision(t, obj, "2.0.0")
}

func TestDeletingTheChartRemovesItsArtifacts(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	newHelmRepository(t, ns, "charts", hr.URL, nil)
	obj := newHelmChart(t, ns, "app", helmRepoRef("charts"), "app", "", nil)
	path := env.Manager.Store.Path(waitRevision(t, obj, "1.0.0").Status.Artifact)
	if err := env.Client.Delete(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), &sourcev1.HelmChart{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the HelmChart was not deleted (finalizer not removed?)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the chart %s is still on disk after delete (stat: %v)", path, err)
	}
}
