package gitrepository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/depgraph"
)

// errNoArtifact marks an included source that exists but has no artifact.
var errNoArtifact = errors.New("has no artifact yet")

// includeReason is Flux's reason for an unavailable include: NotFound for a
// missing GitRepository, NoArtifact for one that has not stored one yet.
func includeReason(err error) string {
	if errors.Is(err, errNoArtifact) {
		return "NoArtifact"
	}
	return "NotFound"
}

// includeCycleReason is the reason of a GitRepository on an include cycle.
const includeCycleReason = "IncludeCycle"

// includeCycle returns the include cycle obj is on, written as Flux users
// write includes ("a -> b -> a"), or "" when it is on none. Each member of
// a cycle would otherwise store a new artifact holding the others' last
// one, forever, or wait forever for one when none has an artifact yet.
// Included GitRepositories that do not exist end the walk: includedArtifacts
// reports them.
func (r *Reconciler) includeCycle(ctx context.Context, obj *sourcev1.GitRepository) (string, error) {
	key := func(name string) depgraph.Key {
		return depgraph.Key{Kind: sourcev1.GitRepositoryKind, Namespace: obj.Namespace, Name: name}
	}
	var graph depgraph.Graph
	seen := map[string]bool{obj.Name: true}
	for todo := []*sourcev1.GitRepository{obj}; len(todo) > 0; {
		o := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		deps := make([]depgraph.Key, 0, len(o.Spec.Include))
		for _, inc := range o.Spec.Include {
			name := inc.GitRepositoryRef.Name
			deps = append(deps, key(name))
			if seen[name] {
				continue
			}
			seen[name] = true
			src := &sourcev1.GitRepository{}
			if err := r.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: name}, src); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return "", fmt.Errorf("could not get included GitRepository '%s/%s': %w", obj.Namespace, name, err)
			}
			todo = append(todo, src)
		}
		graph.Set(key(o.Name), deps)
	}
	return depgraph.FormatCycle(graph.Cycle(key(obj.Name))), nil
}

// includedArtifacts returns the current artifact of every included
// GitRepository, in spec order, or an error naming the first one without.
func (r *Reconciler) includedArtifacts(ctx context.Context, obj *sourcev1.GitRepository) ([]*meta.Artifact, error) {
	var out []*meta.Artifact
	for _, inc := range obj.Spec.Include {
		var src sourcev1.GitRepository
		key := client.ObjectKey{Namespace: obj.Namespace, Name: inc.GitRepositoryRef.Name}
		if err := r.Get(ctx, key, &src); err != nil {
			return nil, fmt.Errorf("could not get included GitRepository '%s': %w", key, err)
		}
		if src.Status.Artifact == nil || !r.Store.Has(src.Status.Artifact) {
			return nil, fmt.Errorf("included GitRepository '%s' %w", key, errNoArtifact)
		}
		out = append(out, src.Status.Artifact.DeepCopy())
	}
	return out, nil
}

// copyIncludes unpacks each included artifact and copies its fromPath into
// dir/toPath, replacing what the checkout had there.
func (r *Reconciler) copyIncludes(ctx context.Context, obj *sourcev1.GitRepository, arts []*meta.Artifact, dir, scratch string) error {
	for i, inc := range obj.Spec.Include {
		unpacked := filepath.Join(scratch, "include-"+strconv.Itoa(i))
		if err := r.Store.Extract(ctx, arts[i], unpacked); err != nil {
			return fmt.Errorf("unpacking included GitRepository '%s': %w", inc.GitRepositoryRef.Name, err)
		}
		from, err := within(unpacked, inc.GetFromPath())
		if err != nil {
			return fmt.Errorf("include '%s': fromPath: %w", inc.GitRepositoryRef.Name, err)
		}
		toPath := inc.GetToPath()
		if toPath == "" {
			toPath = inc.GitRepositoryRef.Name
		}
		to, err := within(dir, toPath)
		if err != nil {
			return fmt.Errorf("include '%s': toPath: %w", inc.GitRepositoryRef.Name, err)
		}
		if to == dir {
			return fmt.Errorf("include '%s': toPath must name a folder inside the repository", inc.GitRepositoryRef.Name)
		}
		if err := os.RemoveAll(to); err != nil {
			return fmt.Errorf("include '%s': clearing %s: %w", inc.GitRepositoryRef.Name, toPath, err)
		}
		if err := copyTree(from, to); err != nil {
			return fmt.Errorf("include '%s': %w", inc.GitRepositoryRef.Name, err)
		}
	}
	return nil
}

// within joins rel under root and refuses any result outside root.
func within(root, rel string) (string, error) {
	p := filepath.Join(root, filepath.Clean("/"+rel))
	if p != root && !isUnder(p, root) {
		return "", fmt.Errorf("path %q leaves the repository", rel)
	}
	return p, nil
}

func isUnder(p, root string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !filepath.IsAbs(r) && (len(r) < 3 || r[:3] != ".."+string(filepath.Separator))
}

// copyTree copies the regular files and folders under src into dst.
// Symbolic links are not copied: they could point anywhere once moved.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, target)
		default:
			return nil
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// includers maps a GitRepository to those that include it.
func (r *Reconciler) includers(ctx context.Context, o client.Object) []reconcile.Request {
	var list sourcev1.GitRepositoryList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{includeIndex: o.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, item := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&item)})
	}
	return reqs
}

// includeChanged passes updates of an included GitRepository that its
// includers must see: an artifact stored (see artifact.Stored), a new spec
// (which may break an include cycle), or Ready turning True or False (a
// member of a broken cycle that kept its artifact).
type includeChanged struct{ predicate.Funcs }

func (includeChanged) Update(e event.UpdateEvent) bool {
	oldObj, ok1 := e.ObjectOld.(*sourcev1.GitRepository)
	newObj, ok2 := e.ObjectNew.(*sourcev1.GitRepository)
	if !ok1 || !ok2 {
		return false
	}
	return artifact.Stored(oldObj.Status.Artifact, newObj.Status.Artifact) ||
		oldObj.Generation != newObj.Generation || conditions.IsReady(oldObj) != conditions.IsReady(newObj)
}

func (includeChanged) Create(event.CreateEvent) bool   { return false }
func (includeChanged) Delete(event.DeleteEvent) bool   { return false }
func (includeChanged) Generic(event.GenericEvent) bool { return false }
