package helmrepository_test

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

func TestASuspendedHelmRepositoryIsLeftAlone(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	obj := newHelmRepository(t, ns, "charts", hr.URL, nil)
	first := waitReady(t, obj).Status.Artifact.Revision

	setSuspend(t, obj, true)
	hr.AddChart(t, testenv.WriteChart(t, "app", "2.0.0", nil))
	gets := hr.Counts().IndexGets
	got := get(t, obj)
	patch := client.MergeFrom(got.DeepCopy())
	got.Annotations = map[string]string{"reconcile.fluxcd.io/requestedAt": "now"}
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if got := get(t, obj); got.Status.Artifact.Revision != first || hr.Counts().IndexGets != gets {
		t.Fatalf("a suspended HelmRepository was reconciled: %s", describe(got))
	}

	setSuspend(t, obj, false)
	waitFor(t, 30*time.Second, "the resumed object to store the new index", obj, func(o *sourcev1.HelmRepository) bool {
		return o.Status.Artifact != nil && o.Status.Artifact.Revision == sha256Revision(hr.Index())
	})
}

func setSuspend(t *testing.T, obj client.Object, suspend bool) {
	t.Helper()
	got := get(t, obj)
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Suspend = suspend
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatal(err)
	}
}

func TestDeletingTheHelmRepositoryRemovesItsIndex(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	obj := newHelmRepository(t, ns, "charts", hr.URL, nil)
	path := env.Manager.Store.Path(waitReady(t, obj).Status.Artifact)
	if err := env.Client.Delete(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), &sourcev1.HelmRepository{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the HelmRepository was not deleted (finalizer not removed?)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the index %s is still on disk after delete (stat: %v)", path, err)
	}
}
