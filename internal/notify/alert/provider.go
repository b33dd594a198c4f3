package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/notify/event"
)

// Supported tells whether weir can deliver to a provider type.
func Supported(typ string) error {
	switch typ {
	case notificationv1beta3.GenericProvider, notificationv1beta3.GenericHMACProvider, notificationv1beta3.SlackProvider,
		notificationv1beta3.DiscordProvider, notificationv1beta3.AlertManagerProvider:
		return nil
	}
	return fmt.Errorf("provider type %q is not supported by weir yet (generic, generic-hmac, slack, discord and alertmanager are)", typ)
}

// target is where and how one provider delivers.
type target struct {
	typ, address, channel, username, token string
	headers                                map[string]string
	timeout                                time.Duration
}

// maxMessage bounds the message a payload carries, as the services cap
// theirs (Slack's attachment text is cut at about 8,000 characters).
const maxMessage = 4000

// render builds the request body of e for the provider type, and the
// headers it needs.
func render(t target, e event.Event) ([]byte, map[string]string, error) {
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range t.headers {
		h[k] = v
	}
	msg := e.Message
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	switch t.typ {
	case notificationv1beta3.GenericProvider, notificationv1beta3.GenericHMACProvider:
		b, err := json.Marshal(e)
		if err != nil {
			return nil, nil, err
		}
		if t.typ == notificationv1beta3.GenericHMACProvider {
			m := hmac.New(sha256.New, []byte(t.token))
			m.Write(b)
			h["X-Signature"] = "sha256=" + hex.EncodeToString(m.Sum(nil))
		}
		return b, h, nil
	case notificationv1beta3.SlackProvider, notificationv1beta3.DiscordProvider:
		color := "good"
		if e.Severity == eventv1.EventSeverityError {
			color = "danger"
		}
		att := map[string]any{
			"color":       color,
			"author_name": fmt.Sprintf("%s/%s.%s", strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, e.InvolvedObject.Namespace),
			"title":       e.Reason,
			"text":        msg,
			"mrkdwn_in":   []string{"text"},
		}
		if fields := metadataFields(e.Metadata); len(fields) > 0 {
			att["fields"] = fields
		}
		p := map[string]any{"attachments": []any{att}}
		if t.channel != "" {
			p["channel"] = t.channel
		}
		if t.username != "" {
			p["username"] = t.username
		}
		if t.token != "" && t.typ == notificationv1beta3.SlackProvider {
			h["Authorization"] = "Bearer " + t.token
		}
		b, err := json.Marshal(p)
		return b, h, err
	case notificationv1beta3.AlertManagerProvider:
		labels := map[string]string{
			"alertname": "Flux" + e.InvolvedObject.Kind + e.Reason,
			"severity":  e.Severity,
			"reason":    e.Reason,
			"kind":      e.InvolvedObject.Kind,
			"name":      e.InvolvedObject.Name,
			"namespace": e.InvolvedObject.Namespace,
		}
		annotations := map[string]string{"message": msg}
		for k, v := range e.Metadata {
			if k == "summary" {
				annotations["summary"] = v
				continue
			}
			labels[k] = v
		}
		b, err := json.Marshal([]any{map[string]any{
			"labels":      labels,
			"annotations": annotations,
			"status":      "firing",
			"startsAt":    e.Timestamp.UTC().Format(time.RFC3339),
		}})
		return b, h, err
	}
	return nil, nil, Supported(t.typ)
}

// metadataFields are the event's metadata as Slack fields, sorted.
func metadataFields(md map[string]string) []map[string]any {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []map[string]any
	for _, k := range keys {
		out = append(out, map[string]any{"title": k, "value": md[k], "short": false})
	}
	return out
}

// address is where a provider type posts: Discord takes Slack's payload
// at its webhook's /slack path.
func (t target) url() string {
	if t.typ == notificationv1beta3.DiscordProvider && !strings.HasSuffix(t.address, "/slack") {
		return strings.TrimSuffix(t.address, "/") + "/slack"
	}
	return t.address
}

// errPermanent marks a delivery a retry cannot fix (4xx).
var errPermanent = errors.New("refused")

// send posts the event, retrying a 5xx answer or a network error with
// backoff (1 s, 2 s, 4 s), never a 4xx.
func send(ctx context.Context, hc *http.Client, t target, e event.Event) error {
	body, headers, err := render(t, e)
	if err != nil {
		return err
	}
	var last error
	backoff := time.Second
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(last, ctx.Err())
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		last = post(ctx, hc, t, body, headers)
		if last == nil || errors.Is(last, errPermanent) {
			return last
		}
	}
	return last
}

func post(ctx context.Context, hc *http.Client, t target, body []byte, headers map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, redactURL(err.Error(), t.address))
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return errors.New(redactURL(err.Error(), t.address))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 500:
		return fmt.Errorf("the %s provider answered %s", t.typ, resp.Status)
	case resp.StatusCode >= 400:
		return fmt.Errorf("%w: the %s provider answered %s", errPermanent, t.typ, resp.Status)
	}
	return nil
}

// redactURL keeps a provider's address, which often holds its secret
// (Slack and Discord webhook URLs), out of messages.
func redactURL(msg, address string) string {
	if address == "" {
		return msg
	}
	return strings.ReplaceAll(msg, address, "<provider address>")
}

// parseHeaders reads the headers key of a provider's Secret (YAML map).
func parseHeaders(b []byte) (map[string]string, error) {
	h := map[string]string{}
	if len(b) == 0 {
		return h, nil
	}
	if err := yaml.Unmarshal(b, &h); err != nil {
		return nil, errors.New("the Secret's headers key is not a YAML map of strings")
	}
	return h, nil
}
