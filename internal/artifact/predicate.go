package artifact

import (
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// Update passes a new or changed artifact, and a change of the Ready
// condition of a source that has no artifact, so that the objects waiting
// on it say why (a registry that cannot be reached, a tag that does not
// exist) instead of only that there is no artifact yet.
func (Changed) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(Source)
	n, ok2 := e.ObjectNew.(Source)
	if !ok1 || !ok2 {
		return false
	}
	if n.GetArtifact() == nil {
		return readyMessage(e.ObjectOld) != readyMessage(e.ObjectNew)
	}
	oa, na := o.GetArtifact(), n.GetArtifact()
	return oa == nil || oa.Digest != na.Digest || oa.Revision != na.Revision
}

// readyMessage is the status and message of obj's Ready condition.
func readyMessage(obj any) string {
	g, ok := obj.(interface{ GetConditions() []metav1.Condition })
	if !ok {
		return ""
	}
	for _, c := range g.GetConditions() {
		if c.Type == meta.ReadyCondition {
			return string(c.Status) + c.Message
		}
	}
	return ""
}
