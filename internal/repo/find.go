package repo

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Query says which Flux Kustomization a command means. Empty fields match
// anything.
type Query struct {
	// Name is the Kustomization's name; "" matches any (with SpecPath,
	// to find the Kustomization that applies a folder).
	Name string
	// SpecPath, when set, keeps only the Kustomizations whose spec.path
	// is this slash path relative to the root.
	SpecPath string
	// Namespace is the namespace it is applied in (as resolved, see
	// Object.Namespace).
	Namespace string
	// File is the file that declares it (flux's --kustomization-file), a
	// slash path relative to the repository root.
	File string
	// Cluster is a cluster's name or sync root path.
	Cluster string
	// Path is the folder being rendered, a slash path relative to the
	// root: when several Kustomizations match, those whose spec.path it
	// is, then those of the cluster whose sync root holds it, are chosen.
	Path string
}

// Match is a Kustomization found by FindKustomization.
type Match struct {
	// Kustomization is the object, its namespace set as resolved.
	Kustomization *kustomizev1.Kustomization
	// Object is where it was found.
	Object *Object
	// Cluster is the cluster that applies it; nil when --kustomization-file
	// names a file no sync root reaches.
	Cluster *Cluster
}

// FindKustomization returns the one Flux Kustomization q means, among
// those the repository's clusters apply. Same-named Kustomizations are
// told apart by namespace, file, cluster and q.Path (see Query); the same
// object applied by several clusters is one match when it reads no
// values from its cluster (no substituteFrom), else the error asks for
// --cluster. A q.File that no sync root reaches is read on its own, with
// no cluster.
func (r *Repository) FindKustomization(q Query) (*Match, error) {
	var found []*Match
	for _, c := range r.Clusters() {
		if q.Cluster != "" && q.Cluster != c.Name && q.Cluster != c.Path {
			continue
		}
		for _, o := range c.Objects {
			if !isFluxKustomization(o.Unstructured) || (q.Name != "" && o.GetName() != q.Name) || (q.File != "" && o.File != q.File) {
				continue
			}
			if q.SpecPath != "" && specPath(o) != q.SpecPath {
				continue
			}
			if q.Namespace != "" && o.Namespace != "" && o.Namespace != q.Namespace {
				continue
			}
			found = append(found, &Match{Object: o, Cluster: c})
		}
	}
	if len(found) == 0 && q.File != "" && q.Cluster == "" {
		r.mu.Lock()
		objects := r.objects(q.File)
		r.mu.Unlock()
		for _, u := range objects {
			if isFluxKustomization(u) && u.GetName() == q.Name && (q.Namespace == "" || u.GetNamespace() == "" || u.GetNamespace() == q.Namespace) {
				found = append(found, &Match{Object: &Object{Unstructured: u, File: q.File, Namespace: u.GetNamespace()}})
			}
		}
	}
	if len(found) == 0 {
		if q.Name == "" {
			return nil, &NotFoundError{fmt.Sprintf("no Kustomization applies %s%s", q.SpecPath, q.describe())}
		}
		return nil, &NotFoundError{fmt.Sprintf("no Kustomization named %s%s in the repository", q.Name, q.describe())}
	}
	if q.Path != "" {
		found = prefer(found, func(m *Match) bool { return specPath(m.Object) == q.Path })
		found = prefer(found, func(m *Match) bool {
			return m.Cluster != nil && m.Cluster.Path != "." && (q.Path == m.Cluster.Path || strings.HasPrefix(q.Path, m.Cluster.Path+"/"))
		})
	}
	if len(found) > 1 && sameObject(found) && !readsValues(found[0].Object) {
		found = found[:1]
	}
	if len(found) > 1 {
		var lines []string
		for _, m := range found {
			where := "no cluster"
			if m.Cluster != nil {
				where = "cluster " + m.Cluster.Name + " (" + m.Cluster.Path + ")"
			}
			lines = append(lines, fmt.Sprintf("  %s/%s in %s, applied by %s", orUnset(m.Object.Namespace), m.Object.GetName(), m.Object.File, where))
		}
		how := "pass -n, --kustomization-file or --cluster to choose"
		if sameObject(found) {
			how = "its substituteFrom values differ by cluster: pass --cluster to choose"
		}
		what := "named " + q.Name
		if q.Name == "" {
			what = "apply " + q.SpecPath
		}
		return nil, fmt.Errorf("%d Kustomizations %s in the repository:\n%s\n%s", len(found), what, strings.Join(lines, "\n"), how)
	}
	m := found[0]
	ks := &kustomizev1.Kustomization{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m.Object.Object, ks); err != nil {
		return nil, fmt.Errorf("Kustomization %s in %s does not parse: %w", q.Name, m.Object.File, err)
	}
	ks.Namespace = m.Object.Namespace
	m.Kustomization = ks
	return m, nil
}

// Kustomization returns the Kustomization q means (see FindKustomization),
// its namespace defaulting to namespace when nothing in the repository
// gives it one: what `weir diff ks` and the MCP diff render.
func (r *Repository) Kustomization(q Query, namespace string) (*kustomizev1.Kustomization, error) {
	m, err := r.FindKustomization(q)
	if err != nil {
		return nil, err
	}
	if m.Kustomization.Namespace == "" {
		m.Kustomization.Namespace = namespace
	}
	return m.Kustomization, nil
}

// NotFoundError says that no Kustomization matches a Query.
type NotFoundError struct{ msg string }

func (e *NotFoundError) Error() string { return e.msg }

// IsNotFound tells whether err says that no Kustomization matches.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// specPath is a Flux Kustomization's spec.path as a slash path relative
// to the root.
func specPath(o *Object) string {
	p, _, _ := unstructured.NestedString(o.Object, "spec", "path")
	return path.Clean(strings.TrimPrefix(p, "/"))
}

// prefer keeps the matches that ok accepts, when there are several and
// it accepts some.
func prefer(found []*Match, ok func(*Match) bool) []*Match {
	if len(found) < 2 {
		return found
	}
	kept := slices.DeleteFunc(slices.Clone(found), func(m *Match) bool { return !ok(m) })
	if len(kept) == 0 {
		return found
	}
	return kept
}

// sameObject tells whether the matches are one object of one file applied
// in one namespace (by several clusters).
func sameObject(found []*Match) bool {
	for _, m := range found[1:] {
		if m.Object.Unstructured != found[0].Object.Unstructured || m.Object.Namespace != found[0].Object.Namespace {
			return false
		}
	}
	return true
}

// readsValues tells whether a Flux Kustomization reads values from its
// cluster (postBuild.substituteFrom).
func readsValues(o *Object) bool {
	from, _, _ := unstructured.NestedSlice(o.Object, "spec", "postBuild", "substituteFrom")
	return len(from) > 0
}

func (q Query) describe() string {
	var parts []string
	if q.Namespace != "" {
		parts = append(parts, "in namespace "+q.Namespace)
	}
	if q.File != "" {
		parts = append(parts, "in "+q.File)
	}
	if q.Cluster != "" {
		parts = append(parts, "in cluster "+q.Cluster)
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

func orUnset(ns string) string {
	if ns == "" {
		return "(no namespace)"
	}
	return ns
}
