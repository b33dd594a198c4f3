package helmchart

import (
	"fmt"
	"os"
	"sync"

	"github.com/fluxcd/pkg/apis/meta"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/source/helmrepository"
)

// indexCacheSize is the number of parsed repository indexes kept: the
// HelmCharts of one repository, often many, share one parse.
const indexCacheSize = 8

// indexCache keeps parsed indexes by the digest of their artifact, which
// names their content. Its zero value is ready to use.
type indexCache struct {
	mu      sync.Mutex
	entries map[string]*repo.IndexFile
	order   []string
}

// load returns the index stored as a, parsing it once per digest. The
// index must not be modified.
func (c *indexCache) load(store *artifact.Store, a *meta.Artifact) (*repo.IndexFile, error) {
	c.mu.Lock()
	if idx, ok := c.entries[a.Digest]; ok {
		c.mu.Unlock()
		return idx, nil
	}
	c.mu.Unlock()

	b, err := os.ReadFile(store.Path(a))
	if err != nil {
		return nil, fmt.Errorf("reading the stored index: %w", err)
	}
	if int64(len(b)) > helmrepository.MaxIndexSize {
		return nil, fmt.Errorf("the stored index is larger than %d bytes", helmrepository.MaxIndexSize)
	}
	idx, err := helmrepository.LoadIndex(b)
	if err != nil {
		return nil, fmt.Errorf("loading the stored index: %w", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*repo.IndexFile{}
	}
	if _, ok := c.entries[a.Digest]; !ok {
		c.entries[a.Digest] = idx
		c.order = append(c.order, a.Digest)
		if len(c.order) > indexCacheSize {
			delete(c.entries, c.order[0])
			c.order = c.order[1:]
		}
	}
	return idx, nil
}
