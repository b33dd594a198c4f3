package receiver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Nexus signs with HMAC-SHA1.
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strings"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
)

// TestRequest builds the request a Receiver's sender would send, signed
// with token, for `weir trigger receiver`: a push (or the first event of
// spec.events) in the sender's own shape, posted to baseURL followed by the
// Receiver's webhook path.
func TestRequest(obj *notificationv1.Receiver, token, baseURL string) (*http.Request, error) {
	if obj.Status.WebhookPath == "" {
		return nil, fmt.Errorf("Receiver %s/%s has no webhook path yet: is it Ready? (weir get receivers -n %s)", obj.Namespace, obj.Name, obj.Namespace)
	}
	event := func(def string) string {
		if len(obj.Spec.Events) > 0 {
			return obj.Spec.Events[0]
		}
		return def
	}
	sign := func(h func() hash.Hash, body []byte) string {
		m := hmac.New(h, []byte(token))
		m.Write(body)
		return hex.EncodeToString(m.Sum(nil))
	}
	body := []byte(`{"ref":"refs/heads/main","repository":{"full_name":"weir/trigger"},"sender":{"login":"weir"}}`)
	headers := map[string]string{"Content-Type": "application/json", "User-Agent": "weir-trigger"}
	switch obj.Spec.Type {
	case notificationv1.GenericReceiver:
	case notificationv1.GenericHMACReceiver:
		headers["X-Signature"] = "sha256=" + sign(sha256.New, body)
	case notificationv1.GitHubReceiver:
		headers["X-GitHub-Event"] = event("push")
		headers["X-Hub-Signature-256"] = "sha256=" + sign(sha256.New, body)
	case notificationv1.GitLabReceiver:
		body = []byte(`{"object_kind":"push","ref":"refs/heads/main","project":{"path_with_namespace":"weir/trigger"}}`)
		headers["X-Gitlab-Event"] = event("Push Hook")
		headers["X-Gitlab-Token"] = token
	case notificationv1.BitbucketReceiver:
		body = []byte(`{"eventKey":"repo:refs_changed","changes":[{"ref":{"id":"refs/heads/main"}}]}`)
		headers["X-Event-Key"] = event("repo:refs_changed")
		headers["X-Hub-Signature"] = "sha256=" + sign(sha256.New, body)
	case notificationv1.HarborReceiver:
		body = []byte(`{"type":"PUSH_ARTIFACT","event_data":{"repository":{"repo_full_name":"weir/trigger"}}}`)
		headers["Authorization"] = token
	case notificationv1.DockerHubReceiver:
		body = []byte(`{"push_data":{"tag":"latest"},"repository":{"repo_name":"weir/trigger","repo_url":"https://hub.docker.com/r/weir/trigger"}}`)
	case notificationv1.QuayReceiver:
		body = []byte(`{"docker_url":"quay.io/weir/trigger","updated_tags":["latest"]}`)
	case notificationv1.NexusReceiver:
		body = []byte(`{"action":"CREATED","repositoryName":"weir-trigger"}`)
		headers["X-Nexus-Webhook-Signature"] = sign(sha1.New, body)
	case notificationv1.ACRReceiver:
		body = []byte(`{"action":"push","target":{"repository":"weir/trigger","tag":"latest"}}`)
	case notificationv1.CDEventsReceiver:
		body = []byte(`{"context":{"type":"` + event("dev.cdevents.change.merged.0.1.2") + `"},"subject":{}}`)
		headers["Ce-Type"] = event("dev.cdevents.change.merged.0.1.2")
	default:
		return nil, fmt.Errorf("weir cannot send a %s request: %v", obj.Spec.Type, Supported(obj.Spec.Type))
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(baseURL, "/")+obj.Status.WebhookPath, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req, nil
}
