package repo

import (
	"fmt"
	"path"
	"slices"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kustypes "sigs.k8s.io/kustomize/api/types"
)

// Cluster is what one sync root applies: the objects of every file its
// tree of kustomizations and Flux Kustomizations reaches.
type Cluster struct {
	// Name is the cluster's name as a user says it: the sync root's
	// folder ("main" for kubernetes/clusters/main), skipping the
	// conventional folder names cluster, flux and flux-system.
	Name string
	// Path is the sync root, a slash path relative to the repository
	// root ("." for the root itself).
	Path string
	// Source is the name of the source (GitRepository, OCIRepository)
	// the sync root is read from, flux-system unless its Kustomization
	// says otherwise; Flux Kustomizations of other sources are not
	// followed, their paths being in another repository.
	Source string
	// Objects are the objects reached (only Flux objects, ConfigMaps and
	// Secrets are kept), each once per namespace it is applied in.
	Objects []*Object
}

// Object is one object of a file, as a cluster applies it.
type Object struct {
	// Unstructured is the object as written in the file (shared: do not
	// modify it).
	*unstructured.Unstructured
	// File is the file that declares it, a slash path relative to the
	// repository root.
	File string
	// Namespace is the namespace it is applied in: the applying Flux
	// Kustomization's targetNamespace, else the outermost namespace of
	// the kustomization.yaml files that include it, else its own; "" for
	// none (a cluster-scoped object, or one left to the default).
	Namespace string
	// By is namespace/name of the Flux Kustomization that applies it; ""
	// for the sync root's own objects.
	By string
	// Generated names the kustomization file whose generator made it, ""
	// for an object written in File.
	Generated string
	// fromEncrypted marks a generated object made of a SOPS-encrypted
	// file: its data is ciphertext.
	fromEncrypted bool
}

// ID names the object as a user reads it: Kind namespace/name (file).
func (o *Object) ID() string {
	id := o.GetKind() + " "
	if o.Namespace != "" {
		id += o.Namespace + "/"
	}
	return id + o.GetName() + " (" + o.File + ")"
}

// isFluxKustomization tells whether u is a kustomize.toolkit.fluxcd.io
// Kustomization.
func isFluxKustomization(u *unstructured.Unstructured) bool {
	return u.GetKind() == kustomizev1.KustomizationKind && strings.HasPrefix(u.GetAPIVersion(), kustomizev1.GroupVersion.Group+"/")
}

// clusterName is the name of the cluster synced from the slash path.
func clusterName(p string) string {
	for p != "." && p != "/" && p != "" {
		base := path.Base(p)
		if base != "cluster" && base != "flux" && base != "flux-system" {
			return base
		}
		p = path.Dir(p)
	}
	return "repository"
}

// walker walks one cluster's tree.
type walker struct {
	r       *Repository
	c       *Cluster
	visited map[string]bool
	seen    map[string]bool // objects already added: file#index#namespace
}

// walk fills c.Objects from its sync root.
func (r *Repository) walk(c *Cluster) {
	w := &walker{r: r, c: c, visited: map[string]bool{}, seen: map[string]bool{}}
	w.fluxPath(c.Path, "", "")
}

// fluxPath walks what a Flux Kustomization of spec.path dir applies.
func (w *walker) fluxPath(dir, targetNamespace, by string) {
	key := "flux\x00" + dir + "\x00" + targetNamespace
	if w.visited[key] {
		return
	}
	w.visited[key] = true
	if kf := w.r.kustomizationFile(dir); kf != "" {
		w.kustomization(dir, kf, targetNamespace, by)
		return
	}
	w.generated(dir, targetNamespace, by)
}

// generated walks a folder without a kustomization file as Flux's
// generated kustomization takes it: every YAML file under it, and each
// sub-folder holding a kustomization file as a whole.
func (w *walker) generated(dir, namespace, by string) {
	for _, e := range w.r.readDir(dir) {
		p := path.Join(dir, e.Name())
		if e.IsDir() {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if kf := w.r.kustomizationFile(p); kf != "" {
				w.kustomization(p, kf, namespace, by)
			} else {
				w.generated(p, namespace, by)
			}
			continue
		}
		if ext := path.Ext(e.Name()); (ext == ".yaml" || ext == ".yml") && e.Type().IsRegular() {
			w.file(p, namespace, by)
		}
	}
}

// kustomization walks a kustomization file's resources, components and
// generators; outer is the namespace set above it, which wins over its
// own.
func (w *walker) kustomization(dir, kf, outer, by string) {
	key := "kust\x00" + dir + "\x00" + outer + "\x00" + by
	if w.visited[key] {
		return
	}
	w.visited[key] = true
	k, err := w.r.kustomization(kf)
	if err != nil {
		return // the build of the Kustomization reports it
	}
	ns := outer
	if ns == "" {
		ns = k.Namespace
	}
	for _, ref := range append(slices.Clone(k.Resources), k.Components...) {
		if remote(ref) {
			continue
		}
		p := path.Clean(path.Join(dir, ref))
		if p == ".." || strings.HasPrefix(p, "../") || path.IsAbs(ref) {
			continue
		}
		if w.r.isDir(p) {
			if sub := w.r.kustomizationFile(p); sub != "" {
				w.kustomization(p, sub, ns, by)
			}
			continue
		}
		w.file(p, ns, by)
	}
	w.generators(dir, kf, k, ns, by)
}

// remote tells whether a kustomization resource is a URL or a Git
// reference, which the walk does not follow.
func remote(ref string) bool {
	return strings.Contains(ref, "://") || strings.HasPrefix(ref, "git@") || strings.HasPrefix(ref, "github.com/")
}

// file adds the objects of a YAML file, and follows the Flux
// Kustomizations among them.
func (w *walker) file(p, namespace, by string) {
	for i, u := range w.r.objects(p) {
		ns := namespace
		if ns == "" {
			ns = u.GetNamespace()
		}
		key := fmt.Sprintf("%s#%d#%s", p, i, ns)
		if w.seen[key] {
			continue
		}
		w.seen[key] = true
		w.c.Objects = append(w.c.Objects, &Object{Unstructured: u, File: p, Namespace: ns, By: by})
		if isFluxKustomization(u) {
			w.follow(u, ns)
		}
	}
}

// follow walks the spec.path of a Flux Kustomization that reads the
// cluster's own source.
func (w *walker) follow(u *unstructured.Unstructured, namespace string) {
	if p, ok := followed(u, w.c.Source); ok {
		target, _, _ := unstructured.NestedString(u.Object, "spec", "targetNamespace")
		w.fluxPath(p, target, namespace+"/"+u.GetName())
	}
}

// followed returns the spec.path of a Flux Kustomization, as a slash path
// relative to the root, when the walk of a cluster whose sync root is
// read from source follows it: when it reads that source and its path
// holds no variable.
func followed(u *unstructured.Unstructured, source string) (string, bool) {
	kind, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "kind")
	name, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "name")
	p, _, _ := unstructured.NestedString(u.Object, "spec", "path")
	if name != source || (kind != "GitRepository" && kind != "OCIRepository" && kind != "Bucket") || strings.Contains(p, "${") {
		return "", false
	}
	p = path.Clean(strings.TrimPrefix(p, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", false
	}
	return p, true
}

// generators adds the ConfigMaps and Secrets a kustomization generates
// without a name suffix (with one, nothing can name them by their plain
// name). Their data is read from literals and env files; a generator fed
// a SOPS-encrypted file gives an object marked encrypted.
func (w *walker) generators(dir, kf string, k *kustypes.Kustomization, namespace, by string) {
	gen := func(kind string, args kustypes.GeneratorArgs) {
		opts := kustypes.MergeGlobalOptionsIntoLocal(args.Options, k.GeneratorOptions)
		if opts == nil || !opts.DisableNameSuffixHash || args.Name == "" {
			return
		}
		ns := namespace
		if ns == "" {
			ns = args.Namespace
		}
		data := map[string]any{}
		encrypted := false
		for _, l := range args.LiteralSources {
			if k, v, ok := strings.Cut(l, "="); ok {
				data[k] = strings.Trim(v, `"'`)
			}
		}
		for _, env := range args.EnvSources {
			b, err := w.r.read(path.Join(dir, env))
			if err != nil {
				continue
			}
			encrypted = encrypted || strings.Contains(string(b), "sops_mac=ENC[")
			for _, line := range strings.Split(string(b), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				if k, v, ok := strings.Cut(line, "="); ok {
					data[k] = v
				}
			}
		}
		for _, src := range args.FileSources {
			key, file, ok := strings.Cut(src, "=")
			if !ok {
				key, file = path.Base(src), src
			}
			b, err := w.r.read(path.Join(dir, file))
			if err != nil {
				continue
			}
			encrypted = encrypted || strings.Contains(string(b), "mac: ENC[") || strings.Contains(string(b), `"mac": "ENC[`)
			data[key] = string(b)
		}
		field := "data"
		if kind == "Secret" {
			field = "stringData"
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": kind,
			"metadata": map[string]any{"name": args.Name},
			field:      data,
		}}
		if ns != "" {
			u.SetNamespace(ns)
		}
		key := fmt.Sprintf("%s#%s#%s#%s", kf, kind, args.Name, ns)
		if w.seen[key] {
			return
		}
		w.seen[key] = true
		w.c.Objects = append(w.c.Objects, &Object{Unstructured: u, File: kf, Namespace: ns, By: by, Generated: kf, fromEncrypted: encrypted})
	}
	for _, g := range k.ConfigMapGenerator {
		gen("ConfigMap", g.GeneratorArgs)
	}
	for _, g := range k.SecretGenerator {
		gen("Secret", g.GeneratorArgs)
	}
}
