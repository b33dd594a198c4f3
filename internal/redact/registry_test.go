package redact_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/weirhq/weir/internal/redact"
)

func TestRecorderMasksEventsDuringTheObjectsReconcileOnly(t *testing.T) {
	var reg redact.Registry
	fake := record.NewFakeRecorder(10)
	rec := reg.Recorder(fake)
	obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}}
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "db"}}
	key := types.NamespacedName{Namespace: "apps", Name: "web"}

	reg.Start(key).Add("hunter2-token")
	rec.Event(obj, corev1.EventTypeWarning, "Failed", "value hunter2-token")
	rec.Eventf(obj, corev1.EventTypeWarning, "Failed", "value %s", "hunter2-token")
	rec.AnnotatedEventf(obj, nil, corev1.EventTypeWarning, "Failed", "value %s", "hunter2-token")
	rec.Event(other, corev1.EventTypeWarning, "Failed", "value hunter2-token")
	reg.Done(key)
	rec.Event(obj, corev1.EventTypeWarning, "Failed", "value hunter2-token")

	want := []bool{true, true, true, false, false}
	for i, masked := range want {
		e := <-fake.Events
		if got := !strings.Contains(e, "hunter2-token"); got != masked {
			t.Errorf("event %d %q: masked %v, want %v", i, e, got, masked)
		}
	}
}
