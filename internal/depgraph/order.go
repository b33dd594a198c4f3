package depgraph

import (
	"container/heap"
	"slices"
)

// Order returns every node of the graph in an order where each node comes
// after its dependencies, and separately, sorted, the nodes that can never be
// ordered because they sit on a cycle or depend, directly or not, on one.
// Among nodes whose dependencies are all placed, the smallest Key (by Kind,
// Namespace, Name) comes first, so the order is stable. Dependencies that are
// not in the graph are not nodes and do not hold anything back.
func (g *Graph) Order() (ordered []Key, blocked []Key) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	o, b := g.order()
	return keys(o), keys(b)
}

// Levels returns each node's depth, for drawing the graph left to right: 0
// for a node with no dependencies in the graph, otherwise one more than its
// deepest dependency. Nodes that Order reports as blocked, on or behind a
// cycle, have no depth and get -1.
func (g *Graph) Levels() map[Key]int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	ordered, blocked := g.order()
	depth := make(map[*vertex]int, len(ordered))
	levels := make(map[Key]int, len(ordered)+len(blocked))
	for _, v := range ordered {
		level := 0
		for _, d := range v.deps {
			// Every dependency that is a node was ordered before v.
			if d.node {
				level = max(level, depth[d]+1)
			}
		}
		depth[v] = level
		levels[v.key] = level
	}
	for _, v := range blocked {
		levels[v.key] = -1
	}
	return levels
}

// order is Kahn's algorithm with a min-heap of ready nodes. The caller holds
// at least the read lock.
func (g *Graph) order() (ordered, blocked []*vertex) {
	waiting := make(map[*vertex]int, len(g.vertices)) // dependencies not yet placed
	ready := &vertexHeap{}
	for _, v := range g.vertices {
		if !v.node {
			continue
		}
		for _, d := range v.deps {
			if d.node {
				waiting[v]++
			}
		}
		if waiting[v] == 0 {
			*ready = append(*ready, v)
		}
	}
	heap.Init(ready)

	for ready.Len() > 0 {
		v := heap.Pop(ready).(*vertex)
		ordered = append(ordered, v)
		// Only nodes have dependencies, so every dependent is a node.
		for m := range v.dependents {
			waiting[m]--
			if waiting[m] == 0 {
				heap.Push(ready, m)
			}
		}
	}

	for v, n := range waiting {
		if n > 0 {
			blocked = append(blocked, v)
		}
	}
	slices.SortFunc(blocked, func(a, b *vertex) int { return compareKeys(a.key, b.key) })
	return ordered, blocked
}

func keys(vs []*vertex) []Key {
	if len(vs) == 0 {
		return nil
	}
	out := make([]Key, len(vs))
	for i, v := range vs {
		out[i] = v.key
	}
	return out
}

// vertexHeap is a min-heap of vertices by key, for container/heap.
type vertexHeap []*vertex

func (h vertexHeap) Len() int           { return len(h) }
func (h vertexHeap) Less(i, j int) bool { return compareKeys(h[i].key, h[j].key) < 0 }
func (h vertexHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *vertexHeap) Push(x any)        { *h = append(*h, x.(*vertex)) }
func (h *vertexHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}
