package helm

import (
	"bytes"
	"fmt"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/kustomize"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"
)

// Labels helm-controller sets on every object of a release, naming the
// HelmRelease it belongs to.
const (
	NameLabel      = "helm.toolkit.fluxcd.io/name"
	NamespaceLabel = "helm.toolkit.fluxcd.io/namespace"
)

// postRenderer runs the HelmRelease's kustomize post-renderers in order,
// then sets commonMetadata and the origin labels, in memory with the
// kustomize API, as helm-controller does.
type postRenderer struct{ hr *helmv2.HelmRelease }

// Run implements Helm's postrenderer.PostRenderer.
func (p postRenderer) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	out := in
	for i, pr := range p.hr.Spec.PostRenderers {
		if pr.Kustomize == nil {
			continue
		}
		k := kustypes.Kustomization{}
		for _, patch := range pr.Kustomize.Patches {
			k.Patches = append(k.Patches, kustypes.Patch{Path: "", Patch: patch.Patch, Target: selector(patch.Target)})
		}
		for _, img := range pr.Kustomize.Images {
			k.Images = append(k.Images, kustypes.Image{Name: img.Name, NewName: img.NewName, NewTag: img.NewTag, Digest: img.Digest})
		}
		var err error
		if out, err = kustomizeBuild(out, k); err != nil {
			return nil, fmt.Errorf("postRenderers[%d]: %w", i, err)
		}
	}
	labels := map[string]string{NameLabel: p.hr.Name, NamespaceLabel: p.hr.Namespace}
	k := kustypes.Kustomization{}
	if cm := p.hr.Spec.CommonMetadata; cm != nil {
		for key, v := range cm.Labels {
			labels[key] = v
		}
		k.CommonAnnotations = cm.Annotations
	}
	k.Labels = []kustypes.Label{{Pairs: labels}}
	return kustomizeBuild(out, k)
}

// selector converts Flux's patch target to kustomize's.
func selector(s *kustomize.Selector) *kustypes.Selector {
	if s == nil {
		return nil
	}
	return &kustypes.Selector{
		ResId: resid.ResId{
			Gvk:       resid.Gvk{Group: s.Group, Version: s.Version, Kind: s.Kind},
			Name:      s.Name,
			Namespace: s.Namespace,
		},
		AnnotationSelector: s.AnnotationSelector,
		LabelSelector:      s.LabelSelector,
	}
}

// kustomizeBuild builds manifests with k laid over them, in memory.
func kustomizeBuild(manifests *bytes.Buffer, k kustypes.Kustomization) (*bytes.Buffer, error) {
	fs := filesys.MakeFsInMemory()
	if err := fs.WriteFile("/chart/all.yaml", manifests.Bytes()); err != nil {
		return nil, err
	}
	k.APIVersion = kustypes.KustomizationVersion
	k.Kind = kustypes.KustomizationKind
	k.Resources = []string{"all.yaml"}
	b, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	if err := fs.WriteFile("/chart/kustomization.yaml", b); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = kustypes.LoadRestrictionsRootOnly
	res, err := krusty.MakeKustomizer(opts).Run(fs, "/chart")
	if err != nil {
		return nil, err
	}
	y, err := res.AsYaml()
	if err != nil {
		return nil, err
	}
	return bytes.NewBuffer(y), nil
}
