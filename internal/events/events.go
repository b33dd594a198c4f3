// Package events reads the Kubernetes Events that Flux's controllers (and
// weir's) record about their objects, as `flux events` shows them: oldest
// first, filtered by the object they are about. `weir events` and the MCP
// server's get_flux_events tool read through it.
package events

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

// Query says which events List returns. Its zero value asks for every
// event of every namespace.
type Query struct {
	// Namespace keeps the events of one namespace; empty keeps all.
	Namespace string
	// Kind keeps the events about objects of this kind (any case).
	Kind string
	// Name keeps the events about objects of this name.
	Name string
	// Type keeps the events of this type: Normal or Warning (any case).
	Type string
	// FluxOnly keeps the events about the kinds weir acts on
	// (control.Kinds), leaving out those about pods, nodes and the rest.
	FluxOnly bool
}

// List reads the events q asks for, sorted by when they last happened,
// oldest first.
func List(ctx context.Context, r client.Reader, q Query) ([]corev1.Event, error) {
	var list corev1.EventList
	var opts []client.ListOption
	where := "in any namespace"
	if q.Namespace != "" {
		opts = append(opts, client.InNamespace(q.Namespace))
		where = "in namespace " + q.Namespace
	}
	if err := r.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("listing the events %s: %w", where, err)
	}
	events := list.Items[:0]
	for _, e := range list.Items {
		if q.keeps(e) {
			events = append(events, e)
		}
	}
	slices.SortStableFunc(events, func(a, b corev1.Event) int { return LastSeen(a).Compare(LastSeen(b)) })
	return events, nil
}

func (q Query) keeps(e corev1.Event) bool {
	o := e.InvolvedObject
	switch {
	case q.Kind != "" && !strings.EqualFold(o.Kind, q.Kind),
		q.Name != "" && o.Name != q.Name,
		q.Type != "" && !strings.EqualFold(e.Type, q.Type):
		return false
	case q.FluxOnly:
		k, ok := control.LookupKind(o.Kind)
		return ok && k.Name == o.Kind
	}
	return true
}

// LastSeen is when an event last happened, whichever field its emitter
// set.
func LastSeen(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case e.Series != nil:
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
