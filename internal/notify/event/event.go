// Package event carries the events weir's reconcilers record to the
// alerting in the same process: a Recorder writes each event as a
// Kubernetes Event, as before, and also publishes it on a Bus as Flux's
// event (fluxcd/pkg/apis/event/v1), with its metadata keys trimmed of the
// object's API group as Flux's event recorder does, so that Alerts see
// what Flux's notification-controller would receive.
package event

import (
	"fmt"
	"strings"
	"sync"
	"time"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Event is Flux's event.
type Event = eventv1.Event

// droppedEvents counts, across the process, the events subscribers
// missed: the metric an operator alerts on, since those events reached no
// Provider.
var droppedEvents = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "weir_event_bus_dropped_total",
	Help: "Events an Alert dispatcher missed because its buffer was full; they were not sent to any Provider.",
})

func init() { ctrlmetrics.Registry.MustRegister(droppedEvents) }

// Bus fans events out to its subscribers. Publishing never blocks: a
// subscriber whose buffer is full misses the event, and the count of
// dropped events says so.
type Bus struct {
	mu      sync.Mutex
	subs    []chan Event
	dropped int
}

// Subscribe returns a channel receiving every event published from now
// on, with a buffer of size n.
func (b *Bus) Subscribe(n int) <-chan Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan Event, n)
	b.subs = append(b.subs, ch)
	return ch
}

// Publish sends e to every subscriber that has room for it.
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.subs {
		select {
		case ch <- e:
		default:
			b.dropped++
			droppedEvents.Inc()
		}
	}
}

// Dropped is how many events subscribers missed because they were full.
func (b *Bus) Dropped() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// Recorder records events as Kubernetes Events through Inner and
// publishes them on Bus.
type Recorder struct {
	// Inner writes the Kubernetes Events.
	Inner record.EventRecorder
	// Bus receives Flux's form of each event; nil publishes nothing.
	Bus *Bus
	// Scheme resolves the involved object's kind.
	Scheme *runtime.Scheme
	// Controller is the reporting controller, such as kustomize-controller.
	Controller string
	// Instance is the reporting instance, such as the pod's name.
	Instance string
}

var _ record.EventRecorder = (*Recorder)(nil)

// Event implements record.EventRecorder.
func (r *Recorder) Event(obj runtime.Object, eventtype, reason, message string) {
	r.Inner.Event(obj, eventtype, reason, message)
	r.publish(obj, nil, eventtype, reason, message)
}

// Eventf implements record.EventRecorder.
func (r *Recorder) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...interface{}) {
	r.Inner.Eventf(obj, eventtype, reason, messageFmt, args...)
	r.publish(obj, nil, eventtype, reason, sprintf(messageFmt, args...))
}

// AnnotatedEventf implements record.EventRecorder.
func (r *Recorder) AnnotatedEventf(obj runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...interface{}) {
	r.Inner.AnnotatedEventf(obj, annotations, eventtype, reason, messageFmt, args...)
	r.publish(obj, annotations, eventtype, reason, sprintf(messageFmt, args...))
}

func (r *Recorder) publish(obj runtime.Object, annotations map[string]string, eventtype, reason, message string) {
	if r.Bus == nil {
		return
	}
	ref, err := reference.GetReference(r.Scheme, obj)
	if err != nil {
		return
	}
	severity := eventv1.EventSeverityInfo
	if eventtype == corev1.EventTypeWarning {
		severity = eventv1.EventSeverityError
	}
	group := ref.GroupVersionKind().Group
	var md map[string]string
	for k, v := range annotations {
		if md == nil {
			md = map[string]string{}
		}
		md[strings.TrimPrefix(k, group+"/")] = v
	}
	r.Bus.Publish(Event{
		InvolvedObject:      *ref,
		Severity:            severity,
		Timestamp:           metav1.NewTime(time.Now()),
		Message:             message,
		Reason:              reason,
		Metadata:            md,
		ReportingController: r.Controller,
		ReportingInstance:   r.Instance,
	})
}

func sprintf(format string, args ...interface{}) string { return fmt.Sprintf(format, args...) }
