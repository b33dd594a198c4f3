package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
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
		notificationv1beta3.DiscordProvider, notificationv1beta3.AlertManagerProvider, notificationv1beta3.MSTeamsProvider,
		notificationv1beta3.GoogleChatProvider, notificationv1beta3.TelegramProvider, notificationv1beta3.Matrix,
		notificationv1beta3.RocketProvider, notificationv1beta3.GrafanaProvider,
		notificationv1beta3.GitHubProvider, notificationv1beta3.GitLabProvider, notificationv1beta3.GiteaProvider:
		return nil
	}
	return fmt.Errorf("provider type %q is not supported by weir yet (it delivers to generic, generic-hmac, slack, discord, rocket, msteams, googlechat, telegram, matrix, alertmanager, grafana, and github, gitlab and gitea commit statuses)", typ)
}

// target is where and how one provider delivers.
type target struct {
	typ, address, channel, username, token string
	// password is the Secret's password key: Grafana's basic auth.
	password string
	headers  map[string]string
	timeout  time.Duration
	// client carries the provider's own CA, client certificate or proxy;
	// nil means the dispatcher's client.
	client *http.Client
}

// maxMessage bounds the message a payload carries, as the services cap
// theirs (Slack's attachment text is cut at about 8,000 characters).
const maxMessage = 4000

// outgoing is one request to a provider's service.
type outgoing struct {
	method, url string
	body        []byte
	headers     map[string]string
}

// errSkip means the event is not for this provider (a commit status
// without a commit).
var errSkip = errors.New("nothing to send")

// render builds the request that delivers e to the provider.
func render(t target, e event.Event) (outgoing, error) {
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range t.headers {
		h[k] = v
	}
	out := outgoing{method: http.MethodPost, url: t.address, headers: h}
	msg := e.Message
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	subject := fmt.Sprintf("%s/%s.%s", strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, e.InvolvedObject.Namespace)
	var p any
	switch t.typ {
	case notificationv1beta3.GenericProvider, notificationv1beta3.GenericHMACProvider:
		b, err := json.Marshal(e)
		if err != nil {
			return out, err
		}
		if t.typ == notificationv1beta3.GenericHMACProvider {
			m := hmac.New(sha256.New, []byte(t.token))
			m.Write(b)
			h["X-Signature"] = "sha256=" + hex.EncodeToString(m.Sum(nil))
		}
		out.body = b
		return out, nil
	case notificationv1beta3.SlackProvider, notificationv1beta3.DiscordProvider, notificationv1beta3.RocketProvider:
		color := "good"
		if e.Severity == eventv1.EventSeverityError {
			color = "danger"
		}
		att := map[string]any{"color": color, "author_name": subject, "title": e.Reason, "text": msg, "mrkdwn_in": []string{"text"}}
		if fields := metadataFields(e.Metadata); len(fields) > 0 {
			att["fields"] = fields
		}
		m := map[string]any{"attachments": []any{att}}
		if t.channel != "" {
			m["channel"] = t.channel
		}
		if t.username != "" {
			m["username"] = t.username
		}
		// Rocket.Chat's incoming webhooks take Slack's payload as is.
		if t.token != "" && t.typ == notificationv1beta3.SlackProvider {
			h["Authorization"] = "Bearer " + t.token
		}
		if t.typ == notificationv1beta3.DiscordProvider && !strings.HasSuffix(t.address, "/slack") {
			// Discord takes Slack's payload at its webhook's /slack path.
			out.url = strings.TrimSuffix(t.address, "/") + "/slack"
		}
		p = m
	case notificationv1beta3.MSTeamsProvider:
		// An Adaptive Card, as Teams workflows' webhooks take it.
		facts := []map[string]string{}
		for _, f := range metadataFields(e.Metadata) {
			facts = append(facts, map[string]string{"title": f["title"].(string), "value": f["value"].(string)})
		}
		body := []any{
			map[string]any{"type": "TextBlock", "text": subject, "weight": "bolder", "size": "medium", "wrap": true},
			map[string]any{"type": "TextBlock", "text": msg, "wrap": true},
		}
		if len(facts) > 0 {
			body = append(body, map[string]any{"type": "FactSet", "facts": facts})
		}
		p = map[string]any{"type": "message", "attachments": []any{map[string]any{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"content": map[string]any{"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
				"version": "1.4", "body": body},
		}}}
	case notificationv1beta3.GoogleChatProvider:
		widgets := []any{map[string]any{"textParagraph": map[string]string{"text": msg}}}
		for _, f := range metadataFields(e.Metadata) {
			widgets = append(widgets, map[string]any{"keyValue": map[string]any{"topLabel": f["title"], "content": f["value"]}})
		}
		p = map[string]any{"cards": []any{map[string]any{
			"header":   map[string]string{"title": subject, "subtitle": e.Reason},
			"sections": []any{map[string]any{"widgets": widgets}},
		}}}
	case notificationv1beta3.TelegramProvider:
		base := t.address
		if base == "" {
			base = "https://api.telegram.org"
		}
		out.url = strings.TrimSuffix(base, "/") + "/bot" + t.token + "/sendMessage"
		p = map[string]any{"chat_id": t.channel, "text": subject + "\n" + msg + metadataText(e.Metadata)}
	case notificationv1beta3.Matrix:
		sum := sha256.Sum256([]byte(e.Timestamp.String() + subject + msg))
		out.method = http.MethodPut
		out.url = fmt.Sprintf("%s/_matrix/client/r0/rooms/%s/send/m.room.message/%s", strings.TrimSuffix(t.address, "/"),
			url.PathEscape(t.channel), hex.EncodeToString(sum[:8]))
		h["Authorization"] = "Bearer " + t.token
		p = map[string]any{"msgtype": "m.text", "body": subject + "\n" + msg + metadataText(e.Metadata)}
	case notificationv1beta3.GitHubProvider, notificationv1beta3.GitLabProvider, notificationv1beta3.GiteaProvider:
		return commitStatus(t, e, out, msg)
	case notificationv1beta3.GrafanaProvider:
		// An annotation (POST /api/annotations), tagged so that a
		// dashboard can select Flux's and one object's.
		tags := []string{"flux", e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.InvolvedObject.Namespace}
		for _, f := range metadataFields(e.Metadata) {
			tags = append(tags, fmt.Sprintf("%s: %s", f["title"], f["value"]))
		}
		if t.token != "" {
			h["Authorization"] = "Bearer " + t.token
		} else if t.username != "" || t.password != "" {
			h["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(t.username+":"+t.password))
		}
		p = map[string]any{"time": e.Timestamp.UnixMilli(), "text": subject + ": " + msg, "tags": tags}
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
		p = []any{map[string]any{"labels": labels, "annotations": annotations, "status": "firing",
			"startsAt": e.Timestamp.UTC().Format(time.RFC3339)}}
	default:
		return out, Supported(t.typ)
	}
	b, err := json.Marshal(p)
	out.body = b
	return out, err
}

// commitStatus renders a GitHub, GitLab or Gitea commit status for the commit of
// the event's revision (main@sha1:<sha>): success for info, failure for
// error, named after the object. The provider's address is the
// repository's URL; the API is derived from it as Flux does.
func commitStatus(t target, e event.Event, out outgoing, msg string) (outgoing, error) {
	// A Git revision, main@sha1:<sha> (or the older main/<sha>); an OCI
	// digest is no commit.
	rev := e.Metadata[eventv1.MetaRevisionKey]
	sha := rev[strings.LastIndexAny(rev, ":@/")+1:]
	if !gitSHA.MatchString(sha) {
		return out, errSkip
	}
	u, err := url.Parse(t.address)
	if err != nil || u.Host == "" {
		return out, fmt.Errorf("%w: the provider's address is not a repository URL", errPermanent)
	}
	repoPath := strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
	context := strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
	if len(msg) > 140 {
		msg = msg[:139] + "…"
	}
	if t.typ == notificationv1beta3.GiteaProvider {
		state := "success"
		if e.Severity == eventv1.EventSeverityError {
			state = "failure"
		}
		out.url = fmt.Sprintf("%s://%s/api/v1/repos/%s/statuses/%s", u.Scheme, u.Host, repoPath, sha)
		out.headers["Authorization"] = "token " + t.token
		out.body, err = json.Marshal(map[string]string{"state": state, "context": context, "description": msg})
		return out, err
	}
	if t.typ == notificationv1beta3.GitHubProvider {
		api := u.Scheme + "://" + u.Host + "/api/v3"
		if u.Host == "github.com" {
			api = "https://api.github.com"
		}
		state := "success"
		if e.Severity == eventv1.EventSeverityError {
			state = "failure"
		}
		out.url = fmt.Sprintf("%s/repos/%s/statuses/%s", api, repoPath, sha)
		out.headers["Authorization"] = "Bearer " + t.token
		out.headers["Accept"] = "application/vnd.github+json"
		out.body, err = json.Marshal(map[string]string{"state": state, "context": context, "description": msg})
		return out, err
	}
	state := "success"
	if e.Severity == eventv1.EventSeverityError {
		state = "failed"
	}
	out.url = fmt.Sprintf("%s://%s/api/v4/projects/%s/statuses/%s", u.Scheme, u.Host, url.PathEscape(repoPath), sha)
	out.headers["PRIVATE-TOKEN"] = t.token
	out.body, err = json.Marshal(map[string]string{"state": state, "name": context, "description": msg})
	return out, err
}

var gitSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// metadataText lists the metadata as lines, sorted.
func metadataText(md map[string]string) string {
	var b strings.Builder
	for _, f := range metadataFields(md) {
		fmt.Fprintf(&b, "\n%s: %s", f["title"], f["value"])
	}
	return b.String()
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

// errPermanent marks a delivery a retry cannot fix (4xx).
var errPermanent = errors.New("refused")

// send delivers the event, retrying a 5xx answer or a network error with
// backoff (1 s, 2 s, 4 s), never a 4xx.
func send(ctx context.Context, hc *http.Client, t target, e event.Event) error {
	out, err := render(t, e)
	if errors.Is(err, errSkip) {
		return nil
	}
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
		last = post(ctx, hc, t, out)
		if last == nil || errors.Is(last, errPermanent) {
			return last
		}
	}
	return last
}

func post(ctx context.Context, hc *http.Client, t target, out outgoing) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, out.method, out.url, bytes.NewReader(out.body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, redact(err.Error(), t, out.url))
	}
	for k, v := range out.headers {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return errors.New(redact(err.Error(), t, out.url))
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

// redact keeps a provider's address and URL, which often hold its secret
// (Slack and Discord webhook URLs, Telegram's bot token), and its token
// out of messages.
func redact(msg string, t target, u string) string {
	for _, s := range []string{u, t.address, t.token} {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "<redacted>")
		}
	}
	return msg
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
