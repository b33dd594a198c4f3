package render

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"testing"
)

func TestRemoteResourceOverHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, configMap, "remote")
	}))
	defer srv.Close()
	root := writeTree(t, map[string]string{
		"kustomization.yaml": "resources:\n- local.yaml\n- " + srv.URL + "/cm.yaml\n",
		"local.yaml":         fmt.Sprintf(configMap, "local"),
	})
	objects, err := Build(context.Background(), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(objects), []string{"ConfigMap /local", "ConfigMap /remote"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	_, err = Build(context.Background(), Options{Root: root, NoRemoteBases: true})
	wantError(t, err, StepBuild, "remote bases are disabled")
}

func TestRemoteGitBase(t *testing.T) {
	// kustomize clones remote bases with the git program into a temporary
	// folder, which the render reads from disk.
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git program")
	}
	repo := writeTree(t, map[string]string{
		"deploy/kustomization.yaml": "resources: [cm.yaml]\n",
		"deploy/cm.yaml":            fmt.Sprintf(configMap, "from-git"),
	})
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "."},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	root := writeTree(t, map[string]string{
		"kustomization.yaml": "resources:\n- file://" + repo + "//deploy?ref=main\n",
	})
	objects, err := Build(context.Background(), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(objects), []string{"ConfigMap /from-git"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
