package repo

import (
	"reflect"
	"runtime"
	"testing"

	"github.com/weirhq/weir/internal/repo/repotest"
)

// TestPrefetchingChangesNothingTheWalkFinds compares the clusters found
// with the prefetch workers (run with -race, this also checks that they
// share the cache safely) to those of the walk alone (one processor: no
// workers).
func TestPrefetchingChangesNothingTheWalkFinds(t *testing.T) {
	homeOps := t.TempDir()
	if err := repotest.HomeOps(homeOps, 8, 3); err != nil {
		t.Fatal(err)
	}
	multi, _ := multicluster(t)
	for name, root := range map[string]string{"home-ops": homeOps, "multicluster": multi} {
		t.Run(name, func(t *testing.T) {
			prev := runtime.GOMAXPROCS(1)
			alone := open(t, root).Clusters()
			runtime.GOMAXPROCS(max(prev, 2))
			prefetched := open(t, root).Clusters()
			runtime.GOMAXPROCS(prev)
			if len(alone) != len(prefetched) {
				t.Fatalf("%d clusters with prefetching, %d without", len(prefetched), len(alone))
			}
			for i, c := range alone {
				p := prefetched[i]
				if c.Name != p.Name || c.Path != p.Path || c.Source != p.Source || len(c.Objects) != len(p.Objects) {
					t.Fatalf("cluster %s (%s, %d objects) is %s (%s, %d objects) with prefetching", c.Name, c.Path, len(c.Objects), p.Name, p.Path, len(p.Objects))
				}
				for j, o := range c.Objects {
					q := p.Objects[j]
					if o.ID() != q.ID() || o.By != q.By || o.Generated != q.Generated || o.fromEncrypted != q.fromEncrypted || !reflect.DeepEqual(o.Object, q.Object) {
						t.Errorf("cluster %s: object %d is %s without prefetching, %s with", c.Name, j, o.ID(), q.ID())
					}
				}
			}
		})
	}
}
