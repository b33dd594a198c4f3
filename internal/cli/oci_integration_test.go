package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

// TestSourceOCIVerbs runs get, reconcile, suspend and resume on a live
// OCIRepository, as `flux ... source oci` does.
func TestSourceOCIVerbs(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	first := reg.PushFiles(t, "app", "latest", map[string]string{"a.yaml": "a: 1\n"}, nil)
	obj := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec:       sourcev1.OCIRepositorySpec{URL: reg.URL("app"), Interval: metav1.Duration{Duration: time.Hour}},
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	waitOCIRevision(t, obj, "latest@"+first)

	out := mustRunWeir(t, "get", "sources", "oci", "-n", ns)
	short := "latest@sha256:" + strings.TrimPrefix(first, "sha256:")[:8]
	row := strings.Fields(strings.Split(out, "\n")[1])
	if len(row) < 5 || row[0] != "app" || row[1] != short || row[2] != "False" || row[3] != "True" {
		t.Errorf("get sources oci printed\n%s\nwant a row app %s False True ...", out, short)
	}

	second := reg.PushFiles(t, "app", "latest", map[string]string{"a.yaml": "a: 2\n"}, nil)
	out = mustRunWeir(t, "reconcile", "source", "oci", "app", "-n", ns, "--timeout", "1m")
	if !strings.HasSuffix(out, "✔ fetched revision latest@"+second+"\n") {
		t.Errorf("reconcile source oci printed\n%s\nwant the new revision latest@%s", out, second)
	}

	out = mustRunWeir(t, "suspend", "source", "oci", "app", "-n", ns)
	if want := "► suspending source oci app in " + ns + " namespace\n✔ source oci suspended\n"; out != want {
		t.Errorf("suspend printed\n%s\nwant\n%s", out, want)
	}
	third := reg.PushFiles(t, "app", "latest", map[string]string{"a.yaml": "a: 3\n"}, nil)
	out = mustRunWeir(t, "resume", "source", "oci", "app", "-n", ns, "--timeout", "1m")
	if !strings.HasSuffix(out, "✔ fetched revision latest@"+third+"\n") {
		t.Errorf("resume source oci printed\n%s\nwant the revision pushed while suspended, latest@%s", out, third)
	}
}

func waitOCIRevision(t *testing.T, obj *sourcev1.OCIRepository, revision string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := &sourcev1.OCIRepository{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err == nil &&
			conditions.IsReady(got) && got.Status.Artifact != nil && got.Status.Artifact.Revision == revision {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("OCIRepository %s is not Ready with %s", obj.Name, revision)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
