package kubeconfig

import (
	"context"
	"sync"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Cache holds one connection of type T (a client, an applier, a Helm
// getter) per kubeconfig content and identity, shared by the objects that
// use it. A connection no object uses any more, because their Secret
// changed or they were deleted, is dropped. The zero value is ready to use.
type Cache[T any] struct {
	// Home is the home cluster's config: its rate limit applies to a
	// remote cluster that has no priority and fairness.
	Home *rest.Config
	// UserAgent names the controller in the requests.
	UserAgent string

	mu      sync.Mutex
	entries map[string]T
	owners  map[client.ObjectKey]string
}

// Get returns owner's connection to remote acting as user (a service
// account's user name; empty for the kubeconfig's own identity). The
// first time, build makes it from the sanitised REST config, impersonating
// user; build may not reach the cluster: it is called again only once the
// connection is forgotten.
func (c *Cache[T]) Get(ctx context.Context, owner client.ObjectKey, remote *Remote, user string, build func(*rest.Config) (T, error)) (T, error) {
	key := remote.Digest + "\x00" + user
	c.mu.Lock()
	if v, ok := c.entries[key]; ok {
		c.use(owner, key)
		c.mu.Unlock()
		return v, nil
	}
	c.mu.Unlock()

	// Sanitising probes the API server: not under the lock.
	cfg := connect(ctx, remote.Config, c.Home, c.UserAgent)
	if user != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	}
	v, err := build(cfg)
	if err != nil {
		var zero T
		return zero, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.entries[key]; ok {
		// Another reconcile made it meanwhile.
		v = prev
	} else {
		if c.entries == nil {
			c.entries = map[string]T{}
		}
		c.entries[key] = v
	}
	c.use(owner, key)
	return v, nil
}

// Forget drops owner's use of its connection, and the connection itself
// when no other object uses it; the next Get builds it again. It is called
// for a deleted object, and for a cluster that stopped answering, so that
// the next attempt starts from a fresh connection.
func (c *Cache[T]) Forget(owner client.ObjectKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release(owner)
}

// Len is the number of connections held.
func (c *Cache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// use records that owner uses key, releasing what it used before.
func (c *Cache[T]) use(owner client.ObjectKey, key string) {
	if c.owners[owner] == key {
		return
	}
	c.release(owner)
	if c.owners == nil {
		c.owners = map[client.ObjectKey]string{}
	}
	c.owners[owner] = key
}

func (c *Cache[T]) release(owner client.ObjectKey) {
	key, ok := c.owners[owner]
	if !ok {
		return
	}
	delete(c.owners, owner)
	for _, k := range c.owners {
		if k == key {
			return
		}
	}
	delete(c.entries, key)
}
