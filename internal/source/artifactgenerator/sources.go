package artifactgenerator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// sourceObject is a source that publishes an artifact.
type sourceObject interface {
	client.Object
	GetArtifact() *meta.Artifact
}

// sourceKinds are the kinds a generator reads from, as source-watcher.
var sourceKinds = []string{
	sourcev1.GitRepositoryKind,
	sourcev1.OCIRepositoryKind,
	sourcev1.BucketKind,
	sourcev1.HelmChartKind,
	sourcev1.ExternalArtifactKind,
}

// newSource returns an empty object of a source kind, nil for another kind.
func newSource(kind string) sourceObject {
	switch kind {
	case sourcev1.GitRepositoryKind:
		return &sourcev1.GitRepository{}
	case sourcev1.OCIRepositoryKind:
		return &sourcev1.OCIRepository{}
	case sourcev1.BucketKind:
		return &sourcev1.Bucket{}
	case sourcev1.HelmChartKind:
		return &sourcev1.HelmChart{}
	case sourcev1.ExternalArtifactKind:
		return &sourcev1.ExternalArtifact{}
	}
	return nil
}

// sourceKey is "Kind/namespace/name" of a generator's source, the key of
// the index that maps a source to its generators.
func sourceKey(obj *swapi.ArtifactGenerator, src swapi.SourceReference) string {
	ns := src.Namespace
	if ns == "" {
		ns = obj.Namespace
	}
	return src.Kind + "/" + ns + "/" + src.Name
}

// observed is a source's current artifact, by alias.
type observed struct {
	swapi.ObservedSource
	artifact *meta.Artifact
	ref      string
}

// waitError is a source that is missing or has no artifact yet: its next
// artifact queues the generator, so it waits rather than backs off.
type waitError struct{ err error }

func (e *waitError) Error() string                  { return e.err.Error() }
func (e *waitError) Unwrap() error                  { return e.err }
func (e *waitError) Waiting() (waiting, retry bool) { return true, false }

// observeSources reads the current artifact of every source, by alias.
func (r *Reconciler) observeSources(ctx context.Context, obj *swapi.ArtifactGenerator) (map[string]observed, error) {
	out := make(map[string]observed, len(obj.Spec.Sources))
	for _, s := range obj.Spec.Sources {
		ref := sourceKey(obj, s)
		src := newSource(s.Kind)
		if src == nil {
			return nil, fmt.Errorf("source '%s' kind '%s' is not supported", s.Name, s.Kind)
		}
		ns := s.Namespace
		if ns == "" {
			ns = obj.Namespace
		}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: s.Name}, src); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &waitError{fmt.Errorf("source '%s' not found", ref)}
			}
			return nil, fmt.Errorf("unable to get source '%s': %w", ref, err)
		}
		a := src.GetArtifact()
		if a == nil {
			why := ""
			if g, ok := src.(conditions.Getter); ok && conditions.IsFalse(g, meta.ReadyCondition) {
				why = ": " + conditions.GetMessage(g, meta.ReadyCondition)
			}
			return nil, &waitError{fmt.Errorf("source '%s' is not ready%s", ref, why)}
		}
		o := observed{
			ObservedSource: swapi.ObservedSource{Digest: a.Digest, Revision: a.Revision, URL: a.URL},
			artifact:       a,
			ref:            ref,
		}
		if rev, ok := a.Metadata[swapi.ArtifactOriginRevisionAnnotation]; ok {
			o.OriginRevision = rev
		}
		out[s.Alias] = o
	}
	return out, nil
}

// fetchSources unpacks the artifact of every source into dir/<alias> and
// returns those folders by alias. The artifacts are read from weir's
// artifact store, checked against their digest.
func (r *Reconciler) fetchSources(ctx context.Context, sources map[string]observed, dir string) (map[string]string, error) {
	out := make(map[string]string, len(sources))
	for alias, s := range sources {
		d := filepath.Join(dir, alias)
		if !r.Store.Has(s.artifact) {
			return nil, fmt.Errorf("the artifact of source '%s' (revision '%s') is not in weir's artifact store", s.ref, s.Revision)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating a work folder: %w", err)
		}
		if err := r.Store.Extract(ctx, s.artifact, d); err != nil {
			return nil, fmt.Errorf("unpacking the artifact of source '%s': %w", s.ref, err)
		}
		out[alias] = d
	}
	return out, nil
}

// observedSources is the map HashObservedSources digests.
func observedSources(sources map[string]observed) map[string]swapi.ObservedSource {
	out := make(map[string]swapi.ObservedSource, len(sources))
	for alias, s := range sources {
		out[alias] = s.ObservedSource
	}
	return out
}
