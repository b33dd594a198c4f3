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

// Update passes an artifact stored since the last update (see Stored), and a change of the Ready
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
	return Stored(o.GetArtifact(), n.GetArtifact())
}

// Stored reports whether n is an artifact stored since o was: the first
// one, a new revision or content, or the same one stored again, as after a
// restart with an empty artifact folder. The objects built from a source
// are queued in every case: one that found the artifact missing waits for
// it to be stored, whatever its revision.
func Stored(o, n *meta.Artifact) bool {
	if n == nil {
		return false
	}
	return o == nil || o.Digest != n.Digest || o.Revision != n.Revision || !o.LastUpdateTime.Equal(&n.LastUpdateTime)
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
