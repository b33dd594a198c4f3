package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// debounce is how long a change waits for others before the snapshot is
// rebuilt: a reconcile writes its status a few times in a row, and the page
// should redraw once.
const debounce = 150 * time.Millisecond

// keepAlive is how often an idle stream sends a comment, so that proxies
// and browsers keep it open.
const keepAlive = 25 * time.Second

// published is a snapshot as sent to the pages, with what a stream needs to
// tell what changed since the last one it sent.
type published struct {
	snap *Snapshot
	// shape is the graph's structure: nodes, places, edges and sources.
	// While it stays the same, a page only needs the nodes that changed.
	shape string
	nodes map[string]string // node JSON by ID, graph nodes and sources
}

// hub holds the latest snapshot and wakes the streams when it changes.
type hub struct {
	mu      sync.Mutex
	cur     *published
	changed chan struct{}
}

// current returns the latest snapshot (nil before the first) and a channel
// closed when a newer one is published.
func (h *hub) current() (*published, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.changed == nil {
		h.changed = make(chan struct{})
	}
	return h.cur, h.changed
}

func (h *hub) publish(snap *Snapshot) {
	p := &published{snap: snap, nodes: map[string]string{}}
	var shape strings.Builder
	for _, list := range [][]Node{snap.Nodes, snap.Sources} {
		for _, n := range list {
			fmt.Fprintf(&shape, "%s@%d,%d,%d;", n.ID, n.Level, n.Row, n.Indent)
			b, _ := json.Marshal(n)
			p.nodes[n.ID] = string(b)
		}
		shape.WriteString("|")
	}
	for _, e := range snap.Edges {
		fmt.Fprintf(&shape, "%s>%s:%s;", e.From, e.To, e.Type)
	}
	p.shape = shape.String()

	h.mu.Lock()
	defer h.mu.Unlock()
	h.cur = p
	if h.changed != nil {
		close(h.changed)
	}
	h.changed = make(chan struct{})
}

// watch registers an informer for each watched kind whose CRD is
// installed; each change pokes the snapshot loop.
func (s *Server) watch(ctx context.Context) error {
	s.present = map[string]bool{}
	s.informers = map[string]cache.Informer{}
	poke := func() {
		select {
		case s.pokes <- struct{}{}:
		default:
		}
	}
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	for _, w := range watched {
		obj := newObject(w.kind)
		inf, err := s.cache.GetInformer(ctx, obj)
		if apimeta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			s.log.Info("the dashboard leaves out a kind whose CRD is not installed", "kind", w.kind)
			continue
		}
		if err != nil {
			return fmt.Errorf("watching %ss for the dashboard: %w", w.kind, err)
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("watching %ss for the dashboard: %w", w.kind, err)
		}
		s.present[w.kind] = true
		s.informers[w.kind] = inf
	}
	return nil
}

// snapshots rebuilds the snapshot after each burst of changes, once the
// cache has synced, until ctx ends.
func (s *Server) snapshots(ctx context.Context) {
	synced := make(chan struct{})
	go s.reportSlowSync(ctx, synced)
	ok := s.cache.WaitForCacheSync(ctx)
	close(synced)
	if !ok {
		return
	}
	for {
		// Drain the pokes of what this build will see.
		select {
		case <-s.pokes:
		default:
		}
		snap, err := s.build(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error(err, "building the dashboard's snapshot")
		} else {
			s.hub.publish(snap)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.pokes:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(debounce):
		}
	}
}

// slowSync is how long the first read of the cluster may take before the
// dashboard says what it waits for.
const slowSync = 30 * time.Second

// reportSlowSync logs the kinds the cache has not listed yet when the
// first read takes long: most often, weir's identity may not list them.
func (s *Server) reportSlowSync(ctx context.Context, synced <-chan struct{}) {
	select {
	case <-ctx.Done():
		return
	case <-synced:
		return
	case <-time.After(slowSync):
	}
	for _, w := range watched {
		if inf := s.informers[w.kind]; inf != nil && !inf.HasSynced() {
			s.log.Info("the dashboard cannot list objects of this kind yet, and shows nothing until it can: can weir's identity list and watch them?",
				"kind", w.kind, "waited", slowSync.String())
		}
	}
}

// serveSnapshot answers the latest snapshot as JSON.
func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	p, err := s.latest(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p.snap)
}

// latest waits for the first snapshot.
func (s *Server) latest(ctx context.Context) (*published, error) {
	for {
		p, changed := s.hub.current()
		if p != nil {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the dashboard has not read the cluster yet: %w", ctx.Err())
		case <-changed:
		}
	}
}

// update is what a stream sends while the graph keeps its shape: the
// nodes and sources that changed, and the counts.
type update struct {
	Nodes   []json.RawMessage `json:"nodes"`
	Sources []json.RawMessage `json:"sources"`
	Counts  Counts            `json:"counts"`
}

// serveStream sends server-sent events: "snapshot" with the whole
// snapshot when the page connects and whenever the graph changes shape,
// "update" with what changed otherwise.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			s.log.Error(err, "encoding a dashboard event")
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}

	sent, err := s.latest(ctx)
	if err != nil || !send("snapshot", sent.snap) {
		return
	}
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		next, changed := s.hub.current()
		if next == sent {
			select {
			case <-ctx.Done():
				return
			case <-ping.C:
				if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
					return
				}
			case <-changed:
			}
			continue
		}
		if next.shape != sent.shape {
			if !send("snapshot", next.snap) {
				return
			}
			sent = next
			continue
		}
		u := update{Counts: next.snap.Counts, Nodes: []json.RawMessage{}, Sources: []json.RawMessage{}}
		for _, list := range []struct {
			nodes []Node
			out   *[]json.RawMessage
		}{{next.snap.Nodes, &u.Nodes}, {next.snap.Sources, &u.Sources}} {
			for _, n := range list.nodes {
				if b := next.nodes[n.ID]; b != sent.nodes[n.ID] {
					*list.out = append(*list.out, json.RawMessage(b))
				}
			}
		}
		sent = next
		if len(u.Nodes)+len(u.Sources) > 0 && !send("update", u) {
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": msg}, which the page shows as it is.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
