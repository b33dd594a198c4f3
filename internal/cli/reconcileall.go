package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
	"github.com/weirhq/weir/internal/diagnose"
)

// reconcileAllParallel bounds how many reconciles `weir reconcile --all`
// waits for at once.
const reconcileAllParallel = 4

// outcome is how one object's reconcile ended.
type outcome int

const (
	succeeded outcome = iota
	failed
	skipped // a dependency or the source failed: not asked
	suspended
)

// reconcileAll reconciles every source (GitRepository, OCIRepository,
// Bucket, HelmRepository), then every Kustomization and HelmRelease in dependency
// order, each as soon as what it depends on has succeeded, and prints one
// line per object. A failure stops the objects that depend on it, which
// say so. It fails when anything failed.
func reconcileAll(ctx context.Context, out io.Writer, c client.Client, namespace string, timeout time.Duration) error {
	graph, err := diagnose.Load(ctx, c, namespace)
	if err != nil {
		return fmt.Errorf("reading the Flux objects: %w", err)
	}
	r := &allReconciler{c: c, out: out, graph: graph, timeout: timeout, done: map[diagnose.Ref]chan struct{}{}, result: map[diagnose.Ref]outcome{}}

	var sources, appliers []diagnose.Ref
	for _, kind := range []string{sourcev1.GitRepositoryKind, sourcev1.OCIRepositoryKind, sourcev1.BucketKind, sourcev1.HelmRepositoryKind} {
		sources = append(sources, graph.All(kind)...)
	}
	for _, kind := range []string{kustomizev1.KustomizationKind, helmv2.HelmReleaseKind} {
		appliers = append(appliers, graph.All(kind)...)
	}
	if len(sources)+len(appliers) == 0 {
		fmt.Fprintln(out, "no sources, Kustomizations or HelmReleases to reconcile")
		return nil
	}
	for _, ref := range append(slices.Clone(sources), appliers...) {
		r.done[ref] = make(chan struct{})
	}
	start := time.Now()
	fmt.Fprintf(out, "► reconciling %d sources, then %d Kustomizations and HelmReleases in dependency order\n", len(sources), len(appliers))

	sem := make(chan struct{}, reconcileAllParallel)
	var wg sync.WaitGroup
	run := func(ref diagnose.Ref, wait func() (string, bool)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(r.done[ref])
			if why, ok := wait(); !ok {
				r.finish(ref, skipped, "✗ %s: not reconciled: %s", ref, why)
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				r.finish(ref, skipped, "✗ %s: not reconciled: %v", ref, ctx.Err())
				return
			}
			defer func() { <-sem }()
			r.reconcile(ctx, ref)
		}()
	}
	for _, ref := range sources {
		run(ref, func() (string, bool) { return "", true })
	}
	// Appliers start once every source has printed its line, so the
	// output reads as the header says: the sources, then the rest. Each
	// still waits only for its own source's outcome.
	allSources := func() bool {
		for _, src := range sources {
			if !r.wait(ctx, src) {
				return false
			}
		}
		return true
	}
	onCycle := cycleMembers(graph, appliers)
	for _, ref := range appliers {
		if onCycle[ref] {
			r.result[ref] = skipped
			fmt.Fprintf(out, "✗ %s: not reconciled: its dependsOn entries form a cycle (weir why %s)\n", ref, whyArg(ref))
			close(r.done[ref])
			continue
		}
		run(ref, func() (string, bool) {
			if !allSources() {
				return "", false
			}
			return r.waitFor(ctx, ref)
		})
	}
	wg.Wait()

	counts := map[outcome]int{}
	for _, o := range r.result {
		counts[o]++
	}
	summary := fmt.Sprintf("%d succeeded, %d failed, %d not reconciled, %d suspended, in %s",
		counts[succeeded], counts[failed], counts[skipped], counts[suspended], time.Since(start).Round(100*time.Millisecond))
	if counts[failed]+counts[skipped] > 0 {
		return errors.New(summary)
	}
	fmt.Fprintf(out, "✔ %s\n", summary)
	return nil
}

// allReconciler holds the state of one `weir reconcile --all`.
type allReconciler struct {
	c       client.Client
	out     io.Writer
	graph   *diagnose.Graph
	timeout time.Duration

	mu     sync.Mutex
	done   map[diagnose.Ref]chan struct{} // closed when the object's line is printed
	result map[diagnose.Ref]outcome
}

// waitFor waits until the dependencies and the source of ref that take
// part in the run are done, and says whether ref may be reconciled.
func (r *allReconciler) waitFor(ctx context.Context, ref diagnose.Ref) (string, bool) {
	var before []diagnose.Ref
	for _, d := range r.graph.Dependencies(ref) {
		if _, ok := r.graph.Get(d); !ok {
			return fmt.Sprintf("its dependency %s does not exist", d), false
		}
		before = append(before, d)
	}
	src, _, hasSource := r.graph.Source(ref)
	if hasSource && src.Kind == sourcev1.HelmChartKind {
		// A HelmChart is reconciled with its HelmRelease: wait for the
		// chart's own repository instead.
		src, _, hasSource = r.graph.Source(src)
	}
	for _, d := range before {
		if ok := r.wait(ctx, d); !ok {
			return "", false
		}
		switch r.outcome(d) {
		case failed, skipped:
			return fmt.Sprintf("its dependency %s failed", d), false
		}
	}
	if hasSource && r.done[src] != nil {
		if ok := r.wait(ctx, src); !ok {
			return "", false
		}
		if r.outcome(src) == failed {
			return fmt.Sprintf("its source %s failed", src), false
		}
	}
	return "", true
}

func (r *allReconciler) wait(ctx context.Context, ref diagnose.Ref) bool {
	select {
	case <-r.done[ref]:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *allReconciler) outcome(ref diagnose.Ref) outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.result[ref]
}

// reconcile asks for one object's reconcile and waits for its outcome.
func (r *allReconciler) reconcile(ctx context.Context, ref diagnose.Ref) {
	k, _ := control.LookupKind(ref.Kind)
	obj, ok := r.graph.Get(ref)
	if !ok {
		r.finish(ref, failed, "✗ %s: not found", ref)
		return
	}
	if control.StatusOf(obj).Suspended {
		r.finish(ref, suspended, "- %s: suspended, left as it is", ref)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	start := time.Now()
	requestedAt, err := control.RequestReconcile(ctx, r.c, obj)
	if err != nil {
		r.finish(ref, failed, "✗ %s: %v", ref, err)
		return
	}
	got, err := control.WaitReconciled(ctx, r.c, client.ObjectKeyFromObject(obj), k, requestedAt)
	took := time.Since(start).Round(100 * time.Millisecond)
	var re *control.ReconcileError
	switch {
	case errors.As(err, &re):
		r.finish(ref, failed, "✗ %s: %s (%s)", ref, re.Message, took)
	case errors.Is(err, context.DeadlineExceeded):
		r.finish(ref, failed, "✗ %s: not Ready within --timeout %s: %v", ref, r.timeout, err)
	case err != nil:
		r.finish(ref, failed, "✗ %s: %v", ref, err)
	default:
		r.finish(ref, succeeded, "✔ %s: %s (%s)", ref, k.Outcome(got), took)
	}
}

// finish records an outcome and prints its line.
func (r *allReconciler) finish(ref diagnose.Ref, o outcome, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.result[ref] = o
	fmt.Fprintf(r.out, format+"\n", args...)
}

// cycleMembers are the objects on a dependsOn cycle, or behind one: a
// topological sort never reaches them.
func cycleMembers(g *diagnose.Graph, refs []diagnose.Ref) map[diagnose.Ref]bool {
	in := map[diagnose.Ref]bool{}
	for _, r := range refs {
		in[r] = true
	}
	pending := map[diagnose.Ref]int{}
	dependents := map[diagnose.Ref][]diagnose.Ref{}
	for _, r := range refs {
		for _, d := range g.Dependencies(r) {
			if in[d] {
				pending[r]++
				dependents[d] = append(dependents[d], r)
			}
		}
	}
	var queue []diagnose.Ref
	for _, r := range refs {
		if pending[r] == 0 {
			queue = append(queue, r)
		}
	}
	reached := map[diagnose.Ref]bool{}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		reached[r] = true
		for _, d := range dependents[r] {
			if pending[d]--; pending[d] == 0 {
				queue = append(queue, d)
			}
		}
	}
	out := map[diagnose.Ref]bool{}
	for _, r := range refs {
		if !reached[r] {
			out[r] = true
		}
	}
	return out
}

// whyArg is how `weir why` names ref.
func whyArg(ref diagnose.Ref) string {
	short := map[string]string{kustomizev1.KustomizationKind: "ks", helmv2.HelmReleaseKind: "hr"}[ref.Kind]
	if short == "" {
		short = ref.Kind
	}
	return short + "/" + ref.Name + " -n " + ref.Namespace
}
