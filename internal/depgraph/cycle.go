package depgraph

// Cycle returns a dependency cycle that node is part of, as the path
// node -> ... -> node (the first and last elements are node), or nil when
// node is on no cycle. A node that depends on itself gives [node, node].
// A node that only depends on a cycle, without being on it, gives nil; Order
// lists it as blocked.
//
// The search follows each node's dependencies in the order given, so the
// same graph always yields the same cycle. It visits each node at most once.
func (g *Graph) Cycle(node Key) []Key {
	g.mu.RLock()
	defer g.mu.RUnlock()
	start := g.node(node)
	if start == nil {
		return nil
	}

	// Depth-first search for a path back to start. The stack is the current
	// path; a vertex seen once need not be searched again, since whether
	// start is reachable from it does not depend on how it was reached.
	type frame struct {
		v    *vertex
		deps []*vertex // the dependencies of v not yet followed
	}
	stack := []frame{{v: start, deps: start.deps}}
	seen := map[*vertex]bool{start: true}
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if len(top.deps) == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		d := top.deps[0]
		top.deps = top.deps[1:]
		if d == start {
			path := make([]Key, 0, len(stack)+1)
			for _, f := range stack {
				path = append(path, f.v.key)
			}
			return append(path, node)
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		if len(d.deps) > 0 {
			stack = append(stack, frame{v: d, deps: d.deps})
		}
	}
	return nil
}
