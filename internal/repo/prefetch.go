package repo

import (
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// prefetch loads, on a few goroutines, what the walk is about to ask
// for: it lists the folders syncRoots scans, then follows each cluster's
// tree as the walk does (kustomization files, generated folders, files,
// the spec.path of Flux Kustomizations), reading, decoding and parsing
// each file once into the Repository's cache. The walk stays sequential
// and in its order: it takes what is loaded, waits for what is being
// loaded, and loads itself what no worker has reached. Results are thus
// those of the walk alone; only the time differs. Prefetching reaches the
// files the walk reaches, no others (with one exception: a
// kustomization file that does not parse but is also a resource is
// decoded, where the walk would not look at its objects).
type prefetch struct {
	r       *Repository
	workers int // at most

	mu      sync.Mutex
	idle    sync.Cond // signalled when pending falls to 0
	queue   []func()
	running int // workers
	pending int // tasks queued or running
	seen    map[string]bool
}

// startPrefetch returns a prefetch with as many workers as the Go
// scheduler runs at once, started as tasks come. With one, the walk would
// only race its own worker: nil, and the methods of a nil prefetch do
// nothing.
func (r *Repository) startPrefetch() *prefetch {
	n := runtime.GOMAXPROCS(0)
	if n < 2 {
		return nil
	}
	p := &prefetch{r: r, workers: n, seen: map[string]bool{}}
	p.idle.L = &p.mu
	return p
}

// do queues task once per key.
func (p *prefetch) do(key string, task func()) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[key] {
		return
	}
	p.seen[key] = true
	p.pending++
	p.queue = append(p.queue, task)
	if p.running < p.workers {
		p.running++
		go p.work()
	}
}

// work runs queued tasks until the queue is empty.
func (p *prefetch) work() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.queue) > 0 {
		task := p.queue[0]
		p.queue = p.queue[1:]
		p.mu.Unlock()
		task()
		p.mu.Lock()
		p.pending--
		if p.pending == 0 {
			p.idle.Broadcast()
		}
	}
	p.running--
}

// wait returns once every task queued has run.
func (p *prefetch) wait() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.pending > 0 {
		p.idle.Wait()
	}
}

// scan lists the folders syncRoots scans: dir, and its folders not
// starting with a dot down to depth 6.
func (p *prefetch) scan(dir string, depth int) {
	p.do("scan\x00"+dir, func() {
		for _, e := range p.r.readDir(dir) {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && depth < 6 {
				p.scan(path.Join(dir, e.Name()), depth+1)
			}
		}
	})
}

// fluxPath loads what a Flux Kustomization of spec.path dir applies in a
// cluster whose sync root is read from source (see walker.fluxPath).
func (p *prefetch) fluxPath(dir, source string) {
	p.do("flux\x00"+dir+"\x00"+source, func() {
		if kf := p.r.kustomizationFile(dir); kf != "" {
			p.kustomization(dir, kf, source)
			return
		}
		p.generated(dir, source)
	})
}

// generated loads a folder without a kustomization file (see
// walker.generated).
func (p *prefetch) generated(dir, source string) {
	for _, e := range p.r.readDir(dir) {
		sub := path.Join(dir, e.Name())
		if e.IsDir() {
			if !strings.HasPrefix(e.Name(), ".") {
				p.do("gen\x00"+sub+"\x00"+source, func() {
					if kf := p.r.kustomizationFile(sub); kf != "" {
						p.kustomization(sub, kf, source)
					} else {
						p.generated(sub, source)
					}
				})
			}
			continue
		}
		if ext := path.Ext(e.Name()); (ext == ".yaml" || ext == ".yml") && e.Type().IsRegular() {
			p.file(sub, source)
		}
	}
}

// kustomization loads a kustomization file, its resources and
// components (see walker.kustomization). The few files its generators
// read are left to the walk, which alone knows which it reads.
func (p *prefetch) kustomization(dir, kf, source string) {
	p.do("kust\x00"+kf+"\x00"+source, func() {
		k, err := p.r.load(kf).parseKustomization(p.r, kf)
		if err != nil {
			return
		}
		for _, ref := range append(slices.Clone(k.Resources), k.Components...) {
			if remote(ref) {
				continue
			}
			sub := path.Clean(path.Join(dir, ref))
			if sub == ".." || strings.HasPrefix(sub, "../") || path.IsAbs(ref) {
				continue
			}
			if p.r.isDir(sub) {
				if skf := p.r.kustomizationFile(sub); skf != "" {
					p.kustomization(sub, skf, source)
				}
				continue
			}
			p.file(sub, source)
		}
	})
}

// file loads a YAML file and follows the Flux Kustomizations among its
// objects that the walk follows (see walker.follow).
func (p *prefetch) file(f, source string) {
	p.do("file\x00"+f+"\x00"+source, func() {
		for _, u := range p.r.load(f).decode(p.r, f) {
			if isFluxKustomization(u) {
				if dir, ok := followed(u, source); ok {
					p.fluxPath(dir, source)
				}
			}
		}
	})
}
