package kustomize

import (
	"context"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// sourceArtifact is the artifact a Kustomization renders from.
type sourceArtifact struct {
	*meta.Artifact
	// Ref is "GitRepository/namespace/name".
	Ref string
}

// artifactSource is a source object that publishes an artifact:
// GitRepository, OCIRepository, Bucket, ExternalArtifact.
type artifactSource interface {
	client.Object
	GetArtifact() *meta.Artifact
}

// sourceIndex indexes Kustomizations by "Kind/namespace/name" of their source.
const sourceIndex = ".spec.sourceRef"

func sourceKey(obj *kustomizev1.Kustomization) string {
	ns := obj.Spec.SourceRef.Namespace
	if ns == "" {
		ns = obj.Namespace
	}
	return obj.Spec.SourceRef.Kind + "/" + ns + "/" + obj.Spec.SourceRef.Name
}

// fetchSource returns the current artifact of the Kustomization's source.
// A source that is missing or has no artifact yet is waited on: its next
// artifact queues the Kustomization.
func (r *Reconciler) fetchSource(ctx context.Context, obj *kustomizev1.Kustomization) (*sourceArtifact, error) {
	ref := sourceKey(obj)
	ns := obj.Spec.SourceRef.Namespace
	if ns == "" {
		ns = obj.Namespace
	}
	if r.NoCrossNamespaceRefs && ns != obj.Namespace {
		return nil, &waitError{reason: "AccessDenied", stalled: true,
			err: fmt.Errorf("can't access '%s', cross-namespace references have been blocked", ref)}
	}
	var src artifactSource
	switch obj.Spec.SourceRef.Kind {
	case sourcev1.GitRepositoryKind:
		src = &sourcev1.GitRepository{}
	case sourcev1.OCIRepositoryKind:
		src = &sourcev1.OCIRepository{}
	case sourcev1.ExternalArtifactKind:
		src = &sourcev1.ExternalArtifact{}
	case sourcev1.BucketKind:
		src = &sourcev1.Bucket{}
	default:
		return nil, &waitError{reason: meta.ArtifactFailedReason, stalled: true,
			err: fmt.Errorf("source kind '%s' is not supported (GitRepository, OCIRepository, Bucket and ExternalArtifact are)", obj.Spec.SourceRef.Kind)}
	}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: obj.Spec.SourceRef.Name}, src); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &waitError{reason: meta.ArtifactFailedReason, err: fmt.Errorf("Source '%s' not found", ref)}
		}
		return nil, &stepError{reason: meta.ArtifactFailedReason, err: fmt.Errorf("getting source '%s': %w", ref, err)}
	}
	art := src.GetArtifact()
	if art == nil || !r.Store.Has(art) {
		return nil, &waitError{reason: meta.ArtifactFailedReason, err: fmt.Errorf("Source artifact not found, retrying when '%s' has one", ref)}
	}
	return &sourceArtifact{Artifact: art, Ref: ref}, nil
}
