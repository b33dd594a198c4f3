package event

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A subscriber whose buffer is full misses the event, and both the bus
// and the process-wide metric count it.
func TestPublishCountsWhatAFullSubscriberMisses(t *testing.T) {
	b := &Bus{}
	ch := b.Subscribe(1)
	before := testutil.ToFloat64(droppedEvents)
	b.Publish(Event{Reason: "first"})
	b.Publish(Event{Reason: "second"})
	if got := (<-ch).Reason; got != "first" {
		t.Errorf("the subscriber got %q, want the first event", got)
	}
	if b.Dropped() != 1 {
		t.Errorf("Dropped() = %d, want 1", b.Dropped())
	}
	if got := testutil.ToFloat64(droppedEvents) - before; got != 1 {
		t.Errorf("weir_event_bus_dropped_total rose by %v, want 1", got)
	}
}
