package ui

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

// Detail is what the detail pane shows of one object beyond its Node.
type Detail struct {
	Node       Node        `json:"node"`
	Conditions []Condition `json:"conditions"`
	// Generation is metadata.generation, ObservedGeneration the last one
	// the controller reconciled.
	Generation         int64  `json:"generation"`
	ObservedGeneration int64  `json:"observedGeneration"`
	Interval           string `json:"interval,omitempty"`
	// Source is the source a Kustomization or HelmRelease renders, or the
	// one a HelmChart is built from.
	Source *Ref `json:"source,omitempty"`
	// Path is a Kustomization's path in its source.
	Path                  string `json:"path,omitempty"`
	LastAppliedRevision   string `json:"lastAppliedRevision,omitempty"`
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`
	// Artifact is a source's latest artifact revision and time.
	ArtifactRevision string     `json:"artifactRevision,omitempty"`
	ArtifactTime     *time.Time `json:"artifactTime,omitempty"`
	// RequestedAt is the last reconcile asked for, HandledAt the last one
	// the controller handled.
	RequestedAt string `json:"requestedAt,omitempty"`
	HandledAt   string `json:"handledAt,omitempty"`
	// Inventory is what a Kustomization or HelmRelease applied, at most
	// maxInventory entries of InventoryTotal.
	Inventory      []InventoryEntry `json:"inventory"`
	InventoryTotal int              `json:"inventoryTotal"`
	// Releases is a HelmRelease's history, latest first.
	Releases []Release `json:"releases,omitempty"`
	// Events are the latest Kubernetes events about the object.
	Events      []Event `json:"events"`
	EventsError string  `json:"eventsError,omitempty"`
}

// Condition is a status condition.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// Ref names another object.
type Ref struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// InventoryEntry is an object that a Kustomization or HelmRelease applied.
type InventoryEntry struct {
	Kind      string `json:"kind"`
	Group     string `json:"group,omitempty"`
	Version   string `json:"version,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// Release is one entry of a HelmRelease's history.
type Release struct {
	Name         string     `json:"name"`
	Namespace    string     `json:"namespace"`
	Version      int        `json:"version"`
	Status       string     `json:"status"`
	Chart        string     `json:"chart"`
	ChartVersion string     `json:"chartVersion"`
	AppVersion   string     `json:"appVersion,omitempty"`
	Deployed     *time.Time `json:"deployed,omitempty"`
}

// Event is a Kubernetes event about the object.
type Event struct {
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int32     `json:"count,omitempty"`
	Time    time.Time `json:"time"`
}

const (
	maxInventory = 500
	maxEvents    = 15
)

// newObject is an empty object of a kind the dashboard knows, or nil.
func newObject(kind string) control.Object {
	k, ok := control.LookupKind(kind)
	if !ok || k.Name != kind {
		return nil
	}
	return k.New()
}

// serveObject answers the Detail of ?kind=&namespace=&name=.
func (s *Server) serveObject(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind, key := q.Get("kind"), client.ObjectKey{Namespace: q.Get("namespace"), Name: q.Get("name")}
	obj, code, err := s.get(r.Context(), kind, key)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	d := describe(kind, obj)
	d.Events, d.EventsError = s.events(r.Context(), kind, key)
	writeJSON(w, http.StatusOK, d)
}

// get reads an object from the cache, with the HTTP status of a failure.
func (s *Server) get(ctx context.Context, kind string, key client.ObjectKey) (control.Object, int, error) {
	obj := newObject(kind)
	if obj == nil || !s.present[kind] {
		return nil, http.StatusBadRequest, fmt.Errorf("the dashboard does not show objects of kind %q", kind)
	}
	if key.Name == "" || key.Namespace == "" || (s.opts.Namespace != "" && key.Namespace != s.opts.Namespace) {
		return nil, http.StatusNotFound, fmt.Errorf("%s %s not found", kind, key)
	}
	if err := s.reader.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, http.StatusNotFound, fmt.Errorf("%s %s not found", kind, key)
		}
		return nil, http.StatusInternalServerError, fmt.Errorf("reading %s %s: %w", kind, key, err)
	}
	return obj, http.StatusOK, nil
}

// describe gathers what the detail pane shows of obj.
func describe(kind string, obj control.Object) Detail {
	st := control.StatusOf(obj)
	d := Detail{
		Node: summarize(kind, obj), Generation: obj.GetGeneration(), ObservedGeneration: st.ObservedGeneration,
		RequestedAt: obj.GetAnnotations()["reconcile.fluxcd.io/requestedAt"], HandledAt: st.LastHandledReconcileAt,
		Inventory: []InventoryEntry{}, Events: []Event{},
	}
	if _, ok := obj.(*kustomizev1.Kustomization); !ok {
		if _, ok := obj.(*helmv2.HelmRelease); !ok {
			d.Node = summarizeSource(kind, obj)
		}
	}
	for _, c := range control.Conditions(obj) {
		d.Conditions = append(d.Conditions, Condition{
			Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message,
			LastTransitionTime: c.LastTransitionTime.UTC(),
		})
	}
	ref := func(kind, namespace, name string) *Ref {
		if namespace == "" {
			namespace = obj.GetNamespace()
		}
		return &Ref{ID: nodeID(kind, namespace, name), Kind: kind, Namespace: namespace, Name: name}
	}
	switch o := obj.(type) {
	case *kustomizev1.Kustomization:
		d.Interval = o.Spec.Interval.Duration.String()
		d.Source = ref(o.Spec.SourceRef.Kind, o.Spec.SourceRef.Namespace, o.Spec.SourceRef.Name)
		d.Path = o.Spec.Path
		d.LastAppliedRevision, d.LastAttemptedRevision = o.Status.LastAppliedRevision, o.Status.LastAttemptedRevision
		if o.Status.Inventory != nil {
			addInventoryEntries(&d, o.Status.Inventory.Entries, func(e kustomizev1.ResourceRef) (string, string) { return e.ID, e.Version })
		}
	case *helmv2.HelmRelease:
		d.Interval = o.Spec.Interval.Duration.String()
		switch {
		case o.Spec.ChartRef != nil:
			d.Source = ref(o.Spec.ChartRef.Kind, o.Spec.ChartRef.Namespace, o.Spec.ChartRef.Name)
		case o.Spec.Chart != nil:
			d.Source = ref(sourcev1.HelmChartKind, o.Spec.Chart.Spec.SourceRef.Namespace, o.GetHelmChartName())
		}
		d.LastAttemptedRevision = o.Status.LastAttemptedRevision
		if o.Status.Inventory != nil {
			addInventoryEntries(&d, o.Status.Inventory.Entries, func(e helmv2.ResourceRef) (string, string) { return e.ID, e.Version })
		}
		for _, h := range o.Status.History {
			rel := Release{
				Name: h.Name, Namespace: h.Namespace, Version: h.Version, Status: h.Status,
				Chart: h.ChartName, ChartVersion: h.ChartVersion, AppVersion: h.AppVersion,
			}
			if !h.LastDeployed.IsZero() {
				t := h.LastDeployed.UTC()
				rel.Deployed = &t
			}
			d.Releases = append(d.Releases, rel)
		}
	case *sourcev1.GitRepository:
		d.Interval = o.Spec.Interval.Duration.String()
		d.setArtifact(o.Status.Artifact)
	case *sourcev1.OCIRepository:
		d.Interval = o.Spec.Interval.Duration.String()
		d.setArtifact(o.Status.Artifact)
	case *sourcev1.HelmRepository:
		d.Interval = o.Spec.Interval.Duration.String()
		d.setArtifact(o.Status.Artifact)
	case *sourcev1.HelmChart:
		d.Interval = o.Spec.Interval.Duration.String()
		d.Source = ref(o.Spec.SourceRef.Kind, "", o.Spec.SourceRef.Name)
		d.setArtifact(o.Status.Artifact)
	}
	return d
}

func (d *Detail) setArtifact(a *meta.Artifact) {
	if a == nil {
		return
	}
	d.ArtifactRevision = a.Revision
	if !a.LastUpdateTime.IsZero() {
		t := a.LastUpdateTime.UTC()
		d.ArtifactTime = &t
	}
}

// addInventoryEntries parses inventory entries ("namespace_name_group_kind").
func addInventoryEntries[E any](d *Detail, entries []E, idOf func(E) (string, string)) {
	d.InventoryTotal = len(entries)
	for _, e := range entries {
		if len(d.Inventory) == maxInventory {
			break
		}
		id, version := idOf(e)
		m, err := object.ParseObjMetadata(id)
		if err != nil {
			continue
		}
		d.Inventory = append(d.Inventory, InventoryEntry{
			Kind: m.GroupKind.Kind, Group: m.GroupKind.Group, Version: version, Namespace: m.Namespace, Name: m.Name,
		})
	}
}

// events lists the latest events about an object, read from the API
// server as the dashboard's own identity. A failure is returned as words
// for the pane, since the rest of the detail stands without events.
func (s *Server) events(ctx context.Context, kind string, key client.ObjectKey) ([]Event, string) {
	var list corev1.EventList
	err := s.direct.List(ctx, &list, client.InNamespace(key.Namespace),
		client.MatchingFields{"involvedObject.kind": kind, "involvedObject.name": key.Name})
	if err != nil {
		return []Event{}, "the events could not be read: " + err.Error()
	}
	out := make([]Event, 0, len(list.Items))
	for _, e := range list.Items {
		t := e.LastTimestamp.Time
		if t.IsZero() {
			t = e.EventTime.Time
		}
		if t.IsZero() {
			t = e.CreationTimestamp.Time
		}
		out = append(out, Event{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: e.Count, Time: t.UTC()})
	}
	slices.SortStableFunc(out, func(a, b Event) int { return b.Time.Compare(a.Time) })
	if len(out) > maxEvents {
		out = out[:maxEvents]
	}
	return out, ""
}
