package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/notify/event"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

func sample(severity string) event.Event {
	return event.Event{
		InvolvedObject: corev1.ObjectReference{Kind: "Kustomization", Name: "apps", Namespace: "flux-system", APIVersion: "kustomize.toolkit.fluxcd.io/v1"},
		Severity:       severity, Reason: "ReconciliationSucceeded", Message: "Reconciliation finished in 2s",
		Timestamp: metav1.NewTime(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)),
		Metadata:  map[string]string{"revision": "main@sha1:" + commit},
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %s", b)
	}
	return m
}

// Each provider's request has the method, URL, headers and payload its
// service expects.
func TestRenderEachProvider(t *testing.T) {
	info := sample(eventv1.EventSeverityInfo)
	failure := sample(eventv1.EventSeverityError)

	out, err := render(target{typ: notificationv1beta3.MSTeamsProvider, address: "https://teams.example/hook"}, info)
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, out.body)
	att := m["attachments"].([]any)[0].(map[string]any)
	if m["type"] != "message" || att["contentType"] != "application/vnd.microsoft.card.adaptive" ||
		att["content"].(map[string]any)["type"] != "AdaptiveCard" {
		t.Errorf("msteams payload %s", out.body)
	}

	out, _ = render(target{typ: notificationv1beta3.GoogleChatProvider, address: "https://chat.example/hook"}, info)
	if card := decode(t, out.body)["cards"].([]any)[0].(map[string]any); card["header"].(map[string]any)["title"] != "kustomization/apps.flux-system" {
		t.Errorf("googlechat payload %s", out.body)
	}

	out, _ = render(target{typ: notificationv1beta3.TelegramProvider, address: "http://127.0.0.1:1", token: "123:abc", channel: "-100"}, info)
	if out.url != "http://127.0.0.1:1/bot123:abc/sendMessage" || decode(t, out.body)["chat_id"] != "-100" {
		t.Errorf("telegram request %s %s", out.url, out.body)
	}

	out, _ = render(target{typ: notificationv1beta3.Matrix, address: "https://matrix.example", token: "tok", channel: "!room:example"}, info)
	if out.method != http.MethodPut || !strings.HasPrefix(out.url, "https://matrix.example/_matrix/client/r0/rooms/%21room:example/send/m.room.message/") ||
		out.headers["Authorization"] != "Bearer tok" || decode(t, out.body)["msgtype"] != "m.text" {
		t.Errorf("matrix request %s %s %v", out.method, out.url, out.headers)
	}

	out, _ = render(target{typ: notificationv1beta3.GitHubProvider, address: "https://github.com/owner/home-ops", token: "ghp"}, failure)
	gh := decode(t, out.body)
	if out.url != "https://api.github.com/repos/owner/home-ops/statuses/"+commit || gh["state"] != "failure" ||
		gh["context"] != "kustomization/apps" || out.headers["Authorization"] != "Bearer ghp" {
		t.Errorf("github commit status %s %s", out.url, out.body)
	}
	out, _ = render(target{typ: notificationv1beta3.GitHubProvider, address: "https://git.example.com/owner/home-ops.git", token: "ghp"}, info)
	if out.url != "https://git.example.com/api/v3/repos/owner/home-ops/statuses/"+commit || decode(t, out.body)["state"] != "success" {
		t.Errorf("github enterprise commit status %s %s", out.url, out.body)
	}

	out, _ = render(target{typ: notificationv1beta3.GitLabProvider, address: "https://gitlab.com/group/sub/home-ops", token: "glpat"}, failure)
	if out.url != "https://gitlab.com/api/v4/projects/group%2Fsub%2Fhome-ops/statuses/"+commit || decode(t, out.body)["state"] != "failed" ||
		out.headers["PRIVATE-TOKEN"] != "glpat" {
		t.Errorf("gitlab commit status %s %s", out.url, out.body)
	}

	out, _ = render(target{typ: notificationv1beta3.GiteaProvider, address: "https://gitea.example/owner/home-ops.git", token: "gt"}, failure)
	if out.url != "https://gitea.example/api/v1/repos/owner/home-ops/statuses/"+commit || decode(t, out.body)["state"] != "failure" ||
		out.headers["Authorization"] != "token gt" {
		t.Errorf("gitea commit status %s %s %v", out.url, out.body, out.headers)
	}

	out, _ = render(target{typ: notificationv1beta3.RocketProvider, address: "https://rocket.example/hooks/x", channel: "#flux"}, failure)
	rc := decode(t, out.body)
	if out.url != "https://rocket.example/hooks/x" || rc["channel"] != "#flux" || out.headers["Authorization"] != "" ||
		rc["attachments"].([]any)[0].(map[string]any)["color"] != "danger" {
		t.Errorf("rocket request %s %s %v", out.url, out.body, out.headers)
	}

	out, _ = render(target{typ: notificationv1beta3.GrafanaProvider, address: "https://grafana.example/api/annotations", username: "admin", password: "pw"}, info)
	gf := decode(t, out.body)
	if out.headers["Authorization"] != "Basic YWRtaW46cHc=" || gf["time"] != float64(info.Timestamp.UnixMilli()) ||
		!strings.Contains(fmt.Sprint(gf["tags"]), "flux") || !strings.HasPrefix(gf["text"].(string), "kustomization/apps.flux-system: ") {
		t.Errorf("grafana request %s %v", out.body, out.headers)
	}
	out, _ = render(target{typ: notificationv1beta3.GrafanaProvider, address: "https://grafana.example/api/annotations", token: "glsa"}, info)
	if out.headers["Authorization"] != "Bearer glsa" {
		t.Errorf("grafana with a token: headers %v", out.headers)
	}

	oci := sample(eventv1.EventSeverityInfo)
	oci.Metadata["revision"] = "latest@sha256:" + strings.Repeat("ab", 32)
	if _, err := render(target{typ: notificationv1beta3.GitHubProvider, address: "https://github.com/o/r"}, oci); !errors.Is(err, errSkip) {
		t.Errorf("a commit status for an OCI digest: %v, want skipped", err)
	}
}

// FuzzRender: any event renders for every provider without a panic, with
// a bounded body.
func FuzzRender(f *testing.F) {
	f.Add("Kustomization", "apps", "info", "Reconciliation finished", "main@sha1:"+commit, "https://github.com/o/r")
	f.Add("HelmRelease", "x", "error", strings.Repeat("é", 5000), "", "://bad")
	types := []string{"generic", "generic-hmac", "slack", "discord", "msteams", "googlechat", "telegram", "matrix", "github", "gitlab", "gitea", "rocket", "grafana", "alertmanager", "other"}
	f.Fuzz(func(t *testing.T, kind, name, severity, message, revision, address string) {
		e := sample(severity)
		e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message = kind, name, message
		e.Metadata["revision"] = revision
		for _, typ := range types {
			out, err := render(target{typ: typ, address: address, token: "t", channel: "c"}, e)
			if err == nil && len(out.body) > 64<<10+len(kind)*4+len(name)*4+len(revision)*4+len(address)*4 {
				t.Fatalf("%s rendered %d bytes", typ, len(out.body))
			}
		}
	})
}
