package repo

import (
	"bytes"
	"context"
	"encoding/gob"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/repo/repotest"
)

// indexedBuild builds app (n, a) of the home-ops repository at root with
// the index kept in dir, saves the index, and returns the YAML, how many
// files and folders the index answered for, and whether the clusters
// came from the walk record (see walkrecord.go).
func indexedBuild(t *testing.T, root, dir string, n, a int) (out string, hits int, recorded bool) {
	t.Helper()
	r := open(t, root)
	r.UseIndex(dir)
	b, err := r.Build(context.Background(), BuildOptions{Query: Query{Name: repotest.Name(n, a), Path: repotest.Path(n, a)}, DefaultNamespace: "flux-system"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SaveIndex(); err != nil {
		t.Fatal(err)
	}
	return toYAML(t, b.Objects), r.index.hits, r.walkRecorded
}

// dropWalkRecords removes the walk records in dir, so that the next call
// walks with the index.
func dropWalkRecords(t *testing.T, dir string) {
	t.Helper()
	records, _ := filepath.Glob(filepath.Join(dir, "*"+walkSuffix))
	for _, p := range records {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// noRacyWindow trusts files changed just before they were read, as if
// the test's files had been written long ago.
func noRacyWindow(t *testing.T) {
	old := racyWindow
	racyWindow = -time.Hour
	t.Cleanup(func() { racyWindow = old })
}

// The index answers for the files that did not change, and what is built
// with it is what is built without it; a file edited since, even to the
// same size, or replaced by another is read again.
func TestIndexGivesWhatTheFilesSay(t *testing.T) {
	noRacyWindow(t)
	root, dir := t.TempDir(), t.TempDir()
	if err := repotest.HomeOps(root, 10, 7); err != nil {
		t.Fatal(err)
	}
	want, _, err := build(t, root, BuildOptions{Query: Query{Name: repotest.Name(3, 4), Path: repotest.Path(3, 4)}})
	if err != nil {
		t.Fatal(err)
	}
	wantIn(t, "the build", want, "host: app-3-4.home.example", "TZ: Europe/Paris")

	first, hits, recorded := indexedBuild(t, root, dir, 3, 4)
	if hits != 0 || recorded || first != want {
		t.Fatalf("with no index yet: %d files from the index, walk record used: %v, and\n%s\nwant\n%s", hits, recorded, first, want)
	}
	// Without the walk record, the index answers for each file.
	dropWalkRecords(t, dir)
	second, hits, recorded := indexedBuild(t, root, dir, 3, 4)
	if hits < 200 || recorded || second != want {
		t.Fatalf("with the index: %d files from the index (want every file read before), and\n%s\nwant\n%s", hits, second, want)
	}
	// With it (written by the call before), the clusters come from it.
	third, _, recorded := indexedBuild(t, root, dir, 3, 4)
	if !recorded || third != want {
		t.Fatalf("with the walk record: used %v, and\n%s\nwant\n%s", recorded, third, want)
	}

	// An edit to the same size whose modification time is set back: the
	// change time still tells.
	settings := filepath.Join(root, "kubernetes/components/common/cluster-settings.yaml")
	fi, err := os.Stat(settings)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(settings)
	edited := strings.Replace(string(b), "home.example", "home.exampla", 1)
	if err := os.WriteFile(settings, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(settings, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	out, hits, recorded := indexedBuild(t, root, dir, 3, 4)
	wantIn(t, "the build after a same-size edit", out, "host: app-3-4.home.exampla")
	if hits == 0 || recorded {
		t.Errorf("after one edit, the index answered for %d files, the walk record used: %v", hits, recorded)
	}

	// A file replaced by another (a checkout writes and renames).
	ks := filepath.Join(root, repotest.KsFile(3, 4))
	b, _ = os.ReadFile(ks)
	tmp := ks + ".new"
	if err := os.WriteFile(tmp, []byte(strings.Replace(string(b), "targetNamespace: ns-3", "targetNamespace: ns-x", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, ks); err != nil {
		t.Fatal(err)
	}
	out, _, _ = indexedBuild(t, root, dir, 3, 4)
	wantIn(t, "the build after a replaced ks.yaml", out, "namespace: ns-x")

	// A file added to a folder the walk lists (the sync root, which has no
	// kustomization.yaml): the Kustomization it declares is found.
	writeFile(t, root, "kubernetes/flux/cluster/added.yaml", `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: added
  namespace: flux-system
spec:
  interval: 1h
  path: ./`+repotest.Path(3, 4)+`
  targetNamespace: added
  sourceRef:
    kind: GitRepository
    name: flux-system
`)
	r := open(t, root)
	r.UseIndex(dir)
	b2, err := r.Build(context.Background(), BuildOptions{Query: Query{Name: "added", Path: repotest.Path(3, 4)}, DefaultNamespace: "flux-system"})
	if err != nil {
		t.Fatalf("a Kustomization in a file added since the index: %v", err)
	}
	wantIn(t, "the added Kustomization", toYAML(t, b2.Objects), "namespace: added")
	if err := r.SaveIndex(); err != nil {
		t.Fatal(err)
	}

	// A kustomization.yaml broken since: the same error with the index
	// as without it, and on the call after, once it was recorded.
	writeFile(t, root, "kubernetes/apps/ns-3/kustomization.yaml", "resources: [\n")
	query := BuildOptions{Query: Query{Name: repotest.Name(3, 4), Path: repotest.Path(3, 4)}, DefaultNamespace: "flux-system"}
	_, wantErr := open(t, root).Build(context.Background(), query)
	if wantErr == nil {
		t.Fatal("a broken kustomization.yaml builds")
	}
	for i := 0; i < 2; i++ {
		r := open(t, root)
		r.UseIndex(dir)
		_, err := r.Build(context.Background(), query)
		if err == nil || err.Error() != wantErr.Error() {
			t.Fatalf("call %d with a broken kustomization.yaml: %v, want %v", i+1, err, wantErr)
		}
		if i == 1 && !r.walkRecorded {
			t.Error("the call after the broken kustomization.yaml was recorded did not use the walk record")
		}
		if err := r.SaveIndex(); err != nil {
			t.Fatal(err)
		}
	}
}

// Files changed within the racy window are not vouched for: an index is
// not written for a repository just checked out, and a corrupt or foreign
// index is ignored.
func TestIndexTrustsNoRecentChangeNorABadIndex(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	if err := repotest.HomeOps(root, 10, 7); err != nil {
		t.Fatal(err)
	}
	want, _, _ := indexedBuild(t, root, dir, 1, 1)
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("an index or walk record was written of files changed a moment ago: %v", entries)
	}

	noRacyWindow(t)
	indexedBuild(t, root, dir, 1, 1)
	indexes, _ := filepath.Glob(filepath.Join(dir, "*.gob"))
	records, _ := filepath.Glob(filepath.Join(dir, "*"+walkSuffix))
	if len(indexes) != 1 || len(records) != 1 {
		t.Fatalf("want one index and one walk record, got %v and %v", indexes, records)
	}
	// The walk record answers before the index is read: without it,
	// the index is read.
	dropWalkRecords(t, dir)
	// The index just written, as if an older weir had written it.
	good, err := os.ReadFile(indexes[0])
	if err != nil {
		t.Fatal(err)
	}
	var f indexFile
	if err := gob.NewDecoder(bytes.NewReader(good)).Decode(&f); err != nil || len(f.Files) < minIndexed {
		t.Fatalf("the index holds %d files: %v", len(f.Files), err)
	}
	f.Format++
	var foreign bytes.Buffer
	if err := gob.NewEncoder(&foreign).Encode(f); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"not an index", foreign.String()} {
		if err := os.WriteFile(indexes[0], []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		out, hits, _ := indexedBuild(t, root, dir, 1, 1)
		dropWalkRecords(t, dir)
		if hits != 0 || out != want {
			t.Errorf("index %q: %d files from it, and\n%s\nwant\n%s", bad, hits, out, want)
		}
	}
}
