package mcp

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/apply"
	"github.com/weirhq/weir/internal/redact"
	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/repo"
)

type drift struct {
	Object string `json:"object"`
	// Changes are JSON patch operations, as "replace /spec/replicas: 3".
	Changes []string `json:"changes"`
}

type diffOutput struct {
	Kustomization string `json:"kustomization"`
	From          string `json:"from"`
	// Changed is whether applying would change anything.
	Changed bool     `json:"changed"`
	Created []string `json:"created"`
	Drifted []drift  `json:"drifted"`
	// Deleted are objects the last apply made that a prune would delete.
	Deleted []string `json:"deleted"`
}

func diffKustomization(s *Server) {
	addTool(s, tool{
		Name: "diff_kustomization",
		Description: "Show what applying a Kustomization would change in the cluster (as `weir diff ks`): renders it, asks " +
			"the API server for a server-side dry run of every object, and lists the objects that would be created, " +
			"changed (with the JSON patch) or pruned. Without path it diffs the source's current artifact, which shows " +
			"drift of the cluster from Git; with path, a local folder. Secret values are masked. Nothing is applied.",
	}, func(ctx context.Context, in renderInput) (any, error) {
		if in.Name == "" {
			return nil, errors.New("name is required")
		}
		r, err := s.renderForDiff(ctx, in)
		if err != nil {
			return nil, err
		}
		diffs, err := jsondiff.UnstructuredList(ctx, s.opts.Client, r.objects,
			jsondiff.FieldOwner(apply.FieldManager), jsondiff.MaskSecrets(true), jsondiff.Rationalize(true),
			jsondiff.ExclusionSelector{apply.LabelGroup + "/reconcile": "disabled"})
		if err != nil {
			return nil, fmt.Errorf("dry-running the objects: %w", r.secrets.Error(err))
		}
		out := diffOutput{Kustomization: r.ks.Namespace + "/" + r.ks.Name, From: r.from, Created: []string{}, Drifted: []drift{}, Deleted: []string{}}
		for _, d := range diffs {
			id := objectID(d.GroupVersionKind().Kind, d.GetNamespace(), d.GetName())
			switch d.Type {
			case jsondiff.DiffTypeCreate:
				out.Created = append(out.Created, id)
			case jsondiff.DiffTypeUpdate:
				dr := drift{Object: id, Changes: []string{}}
				for _, op := range d.Patch {
					dr.Changes = append(dr.Changes, r.secrets.Mask(fmt.Sprintf("%s %s: %v", op.Type, op.Path, op.Value)))
				}
				out.Drifted = append(out.Drifted, dr)
			}
		}
		if r.ks.Spec.Prune {
			inv, err := apply.InventoryStore{Reader: s.opts.Client}.Of(ctx, r.ks)
			if err != nil {
				return nil, err
			}
			stale, err := apply.Stale(inv, apply.InventoryOf(r.objects))
			if err != nil {
				return nil, err
			}
			for _, o := range stale {
				out.Deleted = append(out.Deleted, objectID(o.GetKind(), o.GetNamespace(), o.GetName()))
			}
		}
		out.Changed = len(out.Created)+len(out.Drifted)+len(out.Deleted) > 0
		return out, nil
	})
}

// renderForDiff renders the Kustomization with its Secrets as they are,
// for the dry run to compare: from the source's artifact, or from a local
// folder with the cluster's Kustomization (the repository's when the
// cluster has none of that name), as `weir diff ks` does.
func (s *Server) renderForDiff(ctx context.Context, in renderInput) (*rendered, error) {
	if in.Path == "" {
		return s.renderFromSource(ctx, in, false)
	}
	root, rel, err := resolvePath(in.Path, in.Repo)
	if err != nil {
		return nil, err
	}
	ns := orDefault(in.Namespace)
	ks := &kustomizev1.Kustomization{}
	err = s.opts.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: in.Name}, ks)
	if apierrors.IsNotFound(err) {
		var r *repo.Repository
		if r, err = repo.Open(root); err == nil {
			ks, err = r.Kustomization(repo.Query{Name: in.Name, Namespace: ns, Path: filepath.ToSlash(rel)}, ns)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("Kustomization %s/%s: %w", ns, in.Name, err)
	}
	spec := ks.Spec
	spec.Path = "./" + filepath.ToSlash(rel)
	r := &rendered{ks: ks, secrets: &redact.Secrets{}, from: "folder " + in.Path}
	r.objects, err = render.Build(ctx, render.Options{Root: root, Namespace: ks.Namespace, Spec: spec, Values: render.ClusterValues{Reader: s.opts.Client}, Secrets: r.secrets})
	if err != nil {
		return nil, err
	}
	repo.SetOwnerLabels(r.objects, ks.Name, ks.Namespace)
	return r, nil
}

func objectID(kind, namespace, name string) string {
	if namespace == "" {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}
