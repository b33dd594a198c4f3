package events_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/weirhq/weir/internal/events"
	"github.com/weirhq/weir/internal/kube"
)

func event(ns, name, kind, object, typ string, at time.Time) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Name: object, Namespace: ns},
		Type:           typ,
		LastTimestamp:  metav1.NewTime(at),
	}
}

func TestEventsAreFilteredAndOldestFirst(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	c := fake.NewClientBuilder().WithScheme(kube.Scheme()).WithObjects(
		event("flux-system", "e1", "Kustomization", "apps", "Warning", now),
		event("flux-system", "e2", "Kustomization", "apps", "Normal", now.Add(-time.Minute)),
		event("flux-system", "e3", "Pod", "weir-0", "Warning", now.Add(-2*time.Minute)),
		event("apps", "e4", "HelmRelease", "podinfo", "Warning", now.Add(-3*time.Minute)),
	).Build()
	cases := []struct {
		name string
		q    events.Query
		want []string
	}{
		{"a namespace, oldest first", events.Query{Namespace: "flux-system"}, []string{"e3", "e2", "e1"}},
		{"Flux objects only", events.Query{FluxOnly: true}, []string{"e4", "e2", "e1"}},
		{"kind in any case and name", events.Query{Kind: "kustomization", Name: "apps"}, []string{"e2", "e1"}},
		{"warnings", events.Query{Type: "warning", FluxOnly: true}, []string{"e4", "e1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			list, err := events.List(context.Background(), c, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range list {
				got = append(got, e.Name)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
