package repo

import (
	"context"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/repo/repotest"
)

// BenchmarkBuild measures one `weir build ks` call's work on a home-ops
// repository of about 2,300 YAML files: opening the repository, finding
// the Kustomization and its cluster, reading its values and rendering it
// (a fresh Repository each time, as each call of the command is a fresh
// process).
func BenchmarkBuild(b *testing.B) {
	root := b.TempDir()
	if err := repotest.HomeOps(root, 62, 7); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := Open(root)
		if err != nil {
			b.Fatal(err)
		}
		n, a := i%62, i%7
		built, err := r.Build(context.Background(), BuildOptions{Query: Query{Name: repotest.Name(n, a), Path: repotest.Path(n, a)}})
		if err != nil {
			b.Fatal(err)
		}
		if len(built.Objects) != 3 || built.Report.Unresolved != nil {
			b.Fatalf("want 3 objects with every variable resolved, got %d, %v", len(built.Objects), built.Report)
		}
	}
}

// BenchmarkBuildIndexed is BenchmarkBuild with the index an earlier call
// left: each call reads the index, checks each file's stat and reads
// again only what changed (nothing here).
func BenchmarkBuildIndexed(b *testing.B) {
	racyWindow = -time.Hour // the files were just written
	root, dir := b.TempDir(), b.TempDir()
	if err := repotest.HomeOps(root, 62, 7); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := Open(root)
		if err != nil {
			b.Fatal(err)
		}
		r.UseIndex(dir)
		n, a := i%62, i%7
		built, err := r.Build(context.Background(), BuildOptions{Query: Query{Name: repotest.Name(n, a), Path: repotest.Path(n, a)}})
		if err != nil {
			b.Fatal(err)
		}
		if len(built.Objects) != 3 || built.Report.Unresolved != nil {
			b.Fatalf("want 3 objects with every variable resolved, got %d, %v", len(built.Objects), built.Report)
		}
		if err := r.SaveIndex(); err != nil {
			b.Fatal(err)
		}
	}
}
