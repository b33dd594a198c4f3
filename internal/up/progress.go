package up

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is where a Kustomization or HelmRelease stands, as `weir up`
// shows it.
type Phase string

// The phases, in the order an object usually goes through them.
const (
	Pending   Phase = "pending"
	Waiting   Phase = "waiting"
	Applying  Phase = "applying"
	Ready     Phase = "ready"
	Failed    Phase = "failed"
	Suspended Phase = "suspended"
)

// Status is one Kustomization's or HelmRelease's phase.
type Status struct {
	Kind, Namespace, Name string
	Phase                 Phase
	// Detail says what is waited on (a dependency) or why it failed.
	Detail string
}

// ID is "Kind namespace/name".
func (s Status) ID() string { return s.Kind + " " + s.Namespace + "/" + s.Name }

// dependencyMessage matches the Ready message of an object held by a
// dependency, as weir's reconcilers (and Flux's) word it.
var dependencyMessage = regexp.MustCompile(`dependency '([^']+)' (is not ready|not found)`)

// phaseOf reads an object's phase from its conditions. An object whose
// Ready condition is of an older generation is applying its new spec.
func phaseOf(obj conditions.Getter, generation, observed int64, suspended bool) (Phase, string) {
	if suspended {
		return Suspended, ""
	}
	ready := conditions.Get(obj, meta.ReadyCondition)
	switch {
	case ready == nil:
		return Pending, ""
	case ready.Status == metav1.ConditionTrue && observed == generation:
		return Ready, ""
	case ready.Reason == meta.DependencyNotReadyReason:
		if m := dependencyMessage.FindStringSubmatch(ready.Message); m != nil {
			if m[2] == "not found" {
				return Waiting, m[1] + " (not found)"
			}
			return Waiting, m[1]
		}
		return Waiting, ready.Message
	case ready.Status == metav1.ConditionFalse && !conditions.IsReconciling(obj):
		return Failed, ready.Message
	}
	return Applying, ""
}

// Statuses lists the phase of every Kustomization and HelmRelease of the
// cluster, Kustomizations first, each kind by namespace and name.
func (s *Session) Statuses(ctx context.Context) ([]Status, error) {
	var ks kustomizev1.KustomizationList
	if err := s.Client.List(ctx, &ks); err != nil {
		return nil, fmt.Errorf("listing Kustomizations: %w", err)
	}
	var hrs helmv2.HelmReleaseList
	if err := s.Client.List(ctx, &hrs); err != nil {
		return nil, fmt.Errorf("listing HelmReleases: %w", err)
	}
	want := branch + "@sha1:" + s.head.String()
	out := make([]Status, 0, len(ks.Items)+len(hrs.Items))
	for i := range ks.Items {
		k := &ks.Items[i]
		p, d := phaseOf(k, k.Generation, k.Status.ObservedGeneration, k.Spec.Suspend)
		// A Kustomization of the folder is Ready only with its latest
		// snapshot applied.
		if p == Ready && fromFolder(k) && k.Status.LastAppliedRevision != want {
			p = Applying
		}
		out = append(out, Status{Kind: kustomizev1.KustomizationKind, Namespace: k.Namespace, Name: k.Name, Phase: p, Detail: d})
	}
	for i := range hrs.Items {
		h := &hrs.Items[i]
		p, d := phaseOf(h, h.Generation, h.Status.ObservedGeneration, h.Spec.Suspend)
		out = append(out, Status{Kind: helmv2.HelmReleaseKind, Namespace: h.Namespace, Name: h.Name, Phase: p, Detail: d})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind == kustomizev1.KustomizationKind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out, nil
}

// fromFolder tells whether k applies the folder's own source.
func fromFolder(k *kustomizev1.Kustomization) bool {
	ns := k.Spec.SourceRef.Namespace
	if ns == "" {
		ns = k.Namespace
	}
	return k.Spec.SourceRef.Kind == sourcev1.GitRepositoryKind && k.Spec.SourceRef.Name == SourceName && ns == SourceName
}

// Tracker remembers when each object was first seen and first Ready, to
// write "Ready in 2.1 s" lines.
type Tracker struct {
	start   time.Time
	readyAt map[string]time.Duration
}

// NewTracker starts the clock at start.
func NewTracker(start time.Time) *Tracker {
	return &Tracker{start: start, readyAt: map[string]time.Duration{}}
}

// Line describes one status for a person: "Ready in 2.1 s", "waiting on
// Kustomization flux-system/coredns", "failed: <message>".
func (t *Tracker) Line(s Status, now time.Time) string {
	if s.Phase != Ready {
		delete(t.readyAt, s.ID())
	}
	switch s.Phase {
	case Ready:
		d, ok := t.readyAt[s.ID()]
		if !ok {
			d = now.Sub(t.start)
			t.readyAt[s.ID()] = d
		}
		return fmt.Sprintf("Ready in %.1f s", d.Seconds())
	case Waiting:
		return "waiting on " + s.Detail
	case Failed:
		return "failed: " + oneLine(s.Detail)
	}
	return string(s.Phase)
}

// oneLine keeps the first line of a message, shortened to 160 characters.
func oneLine(msg string) string {
	msg, _, _ = strings.Cut(msg, "\n")
	if len(msg) > 160 {
		msg = msg[:157] + "..."
	}
	return msg
}
