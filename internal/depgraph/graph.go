package depgraph

import (
	"slices"
	"sync"
)

// Graph is the dependsOn index. A node is an object that has been Set and
// not Removed since; a dependency may name a key that is not a node (an
// object not yet seen, or deleted), which Missing reports.
//
// The zero value is an empty graph ready to use. A Graph must not be copied
// after first use.
type Graph struct {
	mu sync.RWMutex
	// vertices holds every key that is a node or that a node depends on.
	// Edges are pointers, so walking the graph hashes no strings.
	vertices map[Key]*vertex
}

// vertex is one key of the graph and its edges in both directions.
type vertex struct {
	key Key
	// node is true while key is a node: Set and not Removed since. A vertex
	// that is not a node is kept only while some node depends on it.
	node bool
	// deps are the direct dependencies, duplicates dropped, in the order
	// given. Only nodes have dependencies.
	deps []*vertex
	// dependents are the nodes whose deps hold this vertex.
	dependents map[*vertex]struct{}
}

// Set records that node depends on deps, replacing the edges of any earlier
// Set of node, and makes node a node of the graph even when deps is empty.
// A dependency listed twice is kept once, at its first place. Set keeps no
// reference to deps.
func (g *Graph) Set(node Key, deps []Key) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.vertices == nil {
		g.vertices = make(map[Key]*vertex)
	}
	v := g.vertex(node)
	v.node = true
	g.dropDeps(v)
	for _, key := range deps {
		d := g.vertex(key)
		if _, dup := d.dependents[v]; dup {
			continue
		}
		if d.dependents == nil {
			d.dependents = make(map[*vertex]struct{})
		}
		d.dependents[v] = struct{}{}
		v.deps = append(v.deps, d)
	}
}

// Remove forgets node and its own dependencies. Edges into node stay:
// dependents still name it, and from then on see it as missing.
func (g *Graph) Remove(node Key) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := g.vertices[node]
	if v == nil || !v.node {
		return
	}
	v.node = false
	g.dropDeps(v)
	g.release(v)
}

// vertex returns the vertex of key, adding it if needed. The caller holds
// the write lock.
func (g *Graph) vertex(key Key) *vertex {
	v := g.vertices[key]
	if v == nil {
		v = &vertex{key: key}
		g.vertices[key] = v
	}
	return v
}

// dropDeps removes v's outgoing edges. The caller holds the write lock.
func (g *Graph) dropDeps(v *vertex) {
	for _, d := range v.deps {
		delete(d.dependents, v)
		g.release(d)
	}
	v.deps = nil
}

// release forgets v once nothing keeps it: it is not a node and no node
// depends on it. The caller holds the write lock.
func (g *Graph) release(v *vertex) {
	if !v.node && len(v.dependents) == 0 {
		delete(g.vertices, v.key)
	}
}

// node returns the vertex of key when key is a node, else nil. The caller
// holds at least the read lock.
func (g *Graph) node(key Key) *vertex {
	if v := g.vertices[key]; v != nil && v.node {
		return v
	}
	return nil
}

// DependsOn returns node's direct dependencies in the order they were given
// to Set, or nil when node has none or is not in the graph.
func (g *Graph) DependsOn(node Key) []Key {
	g.mu.RLock()
	defer g.mu.RUnlock()
	v := g.node(node)
	if v == nil || len(v.deps) == 0 {
		return nil
	}
	out := make([]Key, len(v.deps))
	for i, d := range v.deps {
		out[i] = d.key
	}
	return out
}

// Dependents returns the nodes that directly depend on node, sorted by Kind,
// Namespace and Name, or nil when there are none. node itself need not be in
// the graph: the dependents of a deleted object are the ones waiting for it.
func (g *Graph) Dependents(node Key) []Key {
	g.mu.RLock()
	defer g.mu.RUnlock()
	v := g.vertices[node]
	if v == nil || len(v.dependents) == 0 {
		return nil
	}
	out := make([]Key, 0, len(v.dependents))
	for d := range v.dependents {
		out = append(out, d.key)
	}
	slices.SortFunc(out, compareKeys)
	return out
}

// Missing returns node's direct dependencies that are not in the graph, in
// the order given, or nil when there are none. The index follows informers,
// so a dependency created a moment ago may briefly show as missing: the
// caller reports it as not ready, and the dependency's own Set lets the
// caller queue node again through Dependents.
func (g *Graph) Missing(node Key) []Key {
	g.mu.RLock()
	defer g.mu.RUnlock()
	v := g.node(node)
	if v == nil {
		return nil
	}
	var out []Key
	for _, d := range v.deps {
		if !d.node {
			out = append(out, d.key)
		}
	}
	return out
}
