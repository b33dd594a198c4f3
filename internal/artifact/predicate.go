package artifact

import (
	"github.com/fluxcd/pkg/apis/meta"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Source is an object that publishes an artifact: GitRepository,
// OCIRepository, HelmChart.
type Source interface {
	GetArtifact() *meta.Artifact
}

// Changed passes the watch events of sources whose artifact changed
// (revision or digest) and their deletions, so that the objects built from
// them are queued at once.
type Changed struct{ predicate.Funcs }

// Create passes nothing: a new source has no artifact yet.
func (Changed) Create(event.CreateEvent) bool { return false }

// Delete passes every deletion.
func (Changed) Delete(event.DeleteEvent) bool { return true }

// Generic passes nothing.
func (Changed) Generic(event.GenericEvent) bool { return false }

// Update passes a new or changed artifact.
func (Changed) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(Source)
	n, ok2 := e.ObjectNew.(Source)
	if !ok1 || !ok2 || n.GetArtifact() == nil {
		return false
	}
	oa, na := o.GetArtifact(), n.GetArtifact()
	return oa == nil || oa.Digest != na.Digest || oa.Revision != na.Revision
}
