package depgraph

import (
	"maps"
	"slices"
	"testing"
)

// seedChain is the seed repository's dependency chain, all Kustomizations in
// flux-system:
//
//	cilium -> coredns -> flux-operator -> flux-instance -> cert-manager -> envoy-gateway
//	envoy-gateway -> {external-dns, k8s-gateway, cloudflare-tunnel, echo}
//	flux-instance -> {spegel, cloudnative-pg, rustfs}
//
// where an arrow means "is depended on by".
func seedChain() *Graph {
	return build(
		on(ks("echo"), ks("envoy-gateway")),
		on(ks("cloudflare-tunnel"), ks("envoy-gateway")),
		on(ks("k8s-gateway"), ks("envoy-gateway")),
		on(ks("external-dns"), ks("envoy-gateway")),
		on(ks("envoy-gateway"), ks("cert-manager")),
		on(ks("rustfs"), ks("flux-instance")),
		on(ks("cloudnative-pg"), ks("flux-instance")),
		on(ks("spegel"), ks("flux-instance")),
		on(ks("cert-manager"), ks("flux-instance")),
		on(ks("flux-instance"), ks("flux-operator")),
		on(ks("flux-operator"), ks("coredns")),
		on(ks("coredns"), ks("cilium")),
		on(ks("cilium")),
	)
}

func TestSeedChain(t *testing.T) {
	g := seedChain()

	ordered, blocked := g.Order()
	wantOrder := []Key{
		ks("cilium"), ks("coredns"), ks("flux-operator"), ks("flux-instance"),
		// Ready together: cert-manager, cloudnative-pg, rustfs, spegel.
		ks("cert-manager"),
		// envoy-gateway joins the ready ones.
		ks("cloudnative-pg"), ks("envoy-gateway"),
		// Its dependents join too.
		ks("cloudflare-tunnel"), ks("echo"), ks("external-dns"), ks("k8s-gateway"),
		ks("rustfs"), ks("spegel"),
	}
	if !slices.Equal(ordered, wantOrder) {
		t.Errorf("Order() ordered =\n%v\nwant\n%v", ordered, wantOrder)
	}
	if blocked != nil {
		t.Errorf("Order() blocked = %v, want none", blocked)
	}

	wantLevels := map[Key]int{
		ks("cilium"):            0,
		ks("coredns"):           1,
		ks("flux-operator"):     2,
		ks("flux-instance"):     3,
		ks("cert-manager"):      4,
		ks("spegel"):            4,
		ks("cloudnative-pg"):    4,
		ks("rustfs"):            4,
		ks("envoy-gateway"):     5,
		ks("external-dns"):      6,
		ks("k8s-gateway"):       6,
		ks("cloudflare-tunnel"): 6,
		ks("echo"):              6,
	}
	if got := g.Levels(); !maps.Equal(got, wantLevels) {
		t.Errorf("Levels() =\n%v\nwant\n%v", got, wantLevels)
	}

	if got, want := g.Dependents(ks("envoy-gateway")), []Key{
		ks("cloudflare-tunnel"), ks("echo"), ks("external-dns"), ks("k8s-gateway"),
	}; !slices.Equal(got, want) {
		t.Errorf("Dependents(envoy-gateway) = %v, want %v", got, want)
	}
	for _, k := range ordered {
		if c := g.Cycle(k); c != nil {
			t.Errorf("Cycle(%s) = %v in an acyclic chain", k.Name, c)
		}
	}
}

func TestOrderAndLevels(t *testing.T) {
	a, b, c, d, e := ks("a"), ks("b"), ks("c"), ks("d"), ks("e")
	tests := []struct {
		name        string
		graph       []edge
		wantOrdered []Key
		wantBlocked []Key
		wantLevels  map[Key]int
	}{
		{
			name:        "ties go to the smallest key",
			graph:       []edge{on(c), on(a), on(b)},
			wantOrdered: []Key{a, b, c},
			wantLevels:  map[Key]int{a: 0, b: 0, c: 0},
		},
		{
			name:        "kinds sort before namespaces and names",
			graph:       []edge{on(ks("a")), on(hr("z", "z"))},
			wantOrdered: []Key{hr("z", "z"), ks("a")},
			wantLevels:  map[Key]int{ks("a"): 0, hr("z", "z"): 0},
		},
		{
			name:        "a level is one more than the deepest dependency",
			graph:       []edge{on(a), on(b, a), on(c, b), on(d, a, c)},
			wantOrdered: []Key{a, b, c, d},
			wantLevels:  map[Key]int{a: 0, b: 1, c: 2, d: 3},
		},
		{
			name:        "a missing dependency holds nothing back",
			graph:       []edge{on(b, ks("gone")), on(a, b)},
			wantOrdered: []Key{b, a},
			wantLevels:  map[Key]int{a: 1, b: 0},
		},
		{
			name:        "a self-dependency is blocked",
			graph:       []edge{on(a, a), on(b)},
			wantOrdered: []Key{b},
			wantBlocked: []Key{a},
			wantLevels:  map[Key]int{a: -1, b: 0},
		},
		{
			name:        "nodes on and behind a cycle are blocked, sorted",
			graph:       []edge{on(e, d), on(d, c), on(c, b), on(b, c, a), on(a)},
			wantOrdered: []Key{a},
			wantBlocked: []Key{b, c, d, e},
			wantLevels:  map[Key]int{a: 0, b: -1, c: -1, d: -1, e: -1},
		},
		{
			name:        "what a cycle depends on is still ordered",
			graph:       []edge{on(a), on(b, a, c), on(c, b), on(d, a)},
			wantOrdered: []Key{a, d},
			wantBlocked: []Key{b, c},
			wantLevels:  map[Key]int{a: 0, b: -1, c: -1, d: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := build(tt.graph...)
			ordered, blocked := g.Order()
			if !slices.Equal(ordered, tt.wantOrdered) {
				t.Errorf("Order() ordered = %v, want %v", ordered, tt.wantOrdered)
			}
			if !slices.Equal(blocked, tt.wantBlocked) {
				t.Errorf("Order() blocked = %v, want %v", blocked, tt.wantBlocked)
			}
			if got := g.Levels(); !maps.Equal(got, tt.wantLevels) {
				t.Errorf("Levels() = %v, want %v", got, tt.wantLevels)
			}
		})
	}
}
