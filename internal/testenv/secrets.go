package testenv

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/redact"
)

// CheckMasked fails the test if secret is in status, in an event of the
// namespace ns or in the controller's log, and unless status, an event
// and the "Reconciler error" log line of the object ns/name show
// redact.Redacted where the secret was.
func (e *Env) CheckMasked(t testing.TB, ns, name, secret string, status any) {
	t.Helper()
	js, err := json.Marshal(status)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), secret) {
		t.Errorf("the secret is in the status: %s", js)
	} else if !strings.Contains(string(js), redact.Redacted) {
		t.Errorf("the status shows no %s where the API server quoted the value: %s", redact.Redacted, js)
	}

	var events corev1.EventList
	if err := e.Client.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	masked := false
	for _, ev := range events.Items {
		if strings.Contains(ev.Message, secret) {
			t.Errorf("the secret is in the %s event %s: %q", ev.Type, ev.Reason, ev.Message)
		}
		masked = masked || strings.Contains(ev.Message, redact.Redacted)
	}
	if !masked {
		t.Errorf("no event shows %s", redact.Redacted)
	}

	// controller-runtime logs the error after the status is written.
	deadline := time.Now().Add(60 * time.Second)
	for {
		logs := e.Logs.String()
		if strings.Contains(logs, secret) {
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, secret) {
					t.Errorf("the secret is in the log: %.600s", line)
					break
				}
			}
			return
		}
		logged := false
		for _, line := range strings.Split(logs, "\n") {
			logged = logged || (strings.Contains(line, "Reconciler error") && strings.Contains(line, ns) &&
				strings.Contains(line, name) && strings.Contains(line, redact.Redacted))
		}
		if logged {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("no Reconciler error of %s/%s showing %s was logged", ns, name, redact.Redacted)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
