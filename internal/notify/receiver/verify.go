package receiver

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // GitHub's legacy signature and Nexus sign with HMAC-SHA1.
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"slices"
	"strings"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
)

// Kinds of refusal, each with its HTTP status.
var (
	// errUnauthorized: the request is not signed by the token (401).
	errUnauthorized = errors.New("unauthorized")
	// errBadRequest: the request is not the sender's payload (400).
	errBadRequest = errors.New("bad request")
)

// verdict says what a verified request asks for.
type verdict struct {
	// reconcile is true when the listed resources are to be reconciled;
	// false for a ping or an event the receiver does not handle.
	reconcile bool
	// event names the sender's event type, when it has one.
	event string
	// note says why nothing is reconciled.
	note string
}

// options tune the verification of one receiver.
type options struct {
	// allowSHA1 accepts GitHub's legacy X-Hub-Signature (HMAC-SHA1).
	allowSHA1 bool
}

// Supported reports whether weir can verify requests of a receiver type
// here, and why not.
func Supported(typ string) error {
	switch typ {
	case notificationv1.GenericReceiver, notificationv1.GenericHMACReceiver, notificationv1.GitHubReceiver,
		notificationv1.GitLabReceiver, notificationv1.BitbucketReceiver, notificationv1.HarborReceiver,
		notificationv1.DockerHubReceiver, notificationv1.QuayReceiver, notificationv1.NexusReceiver,
		notificationv1.ACRReceiver, notificationv1.CDEventsReceiver:
		return nil
	case notificationv1.GCRReceiver:
		return errors.New("type gcr verifies tokens signed by Google, whose keys weir would have to fetch from Google at each request: not supported; use type generic-hmac with a Pub/Sub push that signs, or generic")
	default:
		return fmt.Errorf("type %q is not supported by weir", typ)
	}
}

// verify checks that a request comes from the receiver's sender, signed
// or authorized by token, and reads which event it carries.
func verify(typ string, token []byte, events []string, h http.Header, body []byte, o options) (verdict, error) {
	switch typ {
	case notificationv1.GenericReceiver:
		// The secret is the path itself (a digest of the token).
		return verdict{reconcile: true}, nil
	case notificationv1.GenericHMACReceiver:
		if err := checkPrefixedHMAC(h.Get("X-Signature"), token, body, false); err != nil {
			return verdict{}, err
		}
		return verdict{reconcile: true}, nil
	case notificationv1.GitHubReceiver:
		if sig := h.Get("X-Hub-Signature-256"); sig != "" {
			if err := checkPrefixedHMAC(sig, token, body, false); err != nil {
				return verdict{}, err
			}
		} else if sig := h.Get("X-Hub-Signature"); sig != "" && o.allowSHA1 {
			if err := checkPrefixedHMAC(sig, token, body, true); err != nil {
				return verdict{}, err
			}
		} else {
			return verdict{}, fmt.Errorf("%w: no X-Hub-Signature-256", errUnauthorized)
		}
		event := h.Get("X-GitHub-Event")
		if event == "ping" {
			return verdict{event: event, note: "ping answered"}, nil
		}
		return filtered(event, events), nil
	case notificationv1.GitLabReceiver:
		if !equal(h.Get("X-Gitlab-Token"), token) {
			return verdict{}, fmt.Errorf("%w: X-Gitlab-Token does not match", errUnauthorized)
		}
		return filtered(h.Get("X-Gitlab-Event"), events), nil
	case notificationv1.BitbucketReceiver:
		if err := checkPrefixedHMAC(h.Get("X-Hub-Signature"), token, body, false); err != nil {
			return verdict{}, err
		}
		event := h.Get("X-Event-Key")
		if event == "diagnostics:ping" {
			return verdict{event: event, note: "ping answered"}, nil
		}
		return filtered(event, events), nil
	case notificationv1.HarborReceiver:
		if !equal(h.Get("Authorization"), token) {
			return verdict{}, fmt.Errorf("%w: Authorization does not match", errUnauthorized)
		}
		return verdict{reconcile: true}, nil
	case notificationv1.DockerHubReceiver:
		var p struct {
			PushData struct {
				Tag string `json:"tag"`
			} `json:"push_data"`
			Repository struct {
				URL  string `json:"repo_url"`
				Name string `json:"repo_name"`
			} `json:"repository"`
		}
		if err := decode(body, &p); err != nil || p.Repository.Name == "" {
			return verdict{}, fmt.Errorf("%w: not a Docker Hub push payload", errBadRequest)
		}
		return verdict{reconcile: true}, nil
	case notificationv1.QuayReceiver:
		var p struct {
			DockerURL   string   `json:"docker_url"`
			UpdatedTags []string `json:"updated_tags"`
		}
		if err := decode(body, &p); err != nil || p.DockerURL == "" {
			return verdict{}, fmt.Errorf("%w: not a Quay push payload", errBadRequest)
		}
		return verdict{reconcile: true}, nil
	case notificationv1.NexusReceiver:
		if !hmacEqual(sha1.New, h.Get("X-Nexus-Webhook-Signature"), token, body) {
			return verdict{}, fmt.Errorf("%w: X-Nexus-Webhook-Signature does not match", errUnauthorized)
		}
		var p struct {
			Action         string `json:"action"`
			RepositoryName string `json:"repositoryName"`
		}
		if err := decode(body, &p); err != nil || p.RepositoryName == "" {
			return verdict{}, fmt.Errorf("%w: not a Nexus repository payload", errBadRequest)
		}
		return verdict{reconcile: true, event: p.Action}, nil
	case notificationv1.ACRReceiver:
		var p struct {
			Action string `json:"action"`
			Target struct {
				Repository string `json:"repository"`
				Tag        string `json:"tag"`
			} `json:"target"`
		}
		if err := decode(body, &p); err != nil || p.Target.Repository == "" {
			return verdict{}, fmt.Errorf("%w: not an ACR payload", errBadRequest)
		}
		return verdict{reconcile: true, event: p.Action}, nil
	case notificationv1.CDEventsReceiver:
		event := h.Get("Ce-Type")
		if event == "" {
			return verdict{}, fmt.Errorf("%w: no Ce-Type header", errBadRequest)
		}
		var p map[string]any
		if err := decode(body, &p); err != nil {
			return verdict{}, fmt.Errorf("%w: the CDEvent is not JSON", errBadRequest)
		}
		return filtered(event, events), nil
	default:
		return verdict{}, fmt.Errorf("%w: %v", errBadRequest, Supported(typ))
	}
}

// filtered accepts an event listed in events, or any when none is listed.
func filtered(event string, events []string) verdict {
	if len(events) == 0 || slices.ContainsFunc(events, func(e string) bool { return strings.EqualFold(e, event) }) {
		return verdict{reconcile: true, event: event}
	}
	return verdict{event: event, note: fmt.Sprintf("event %q is not in spec.events", event)}
}

// checkPrefixedHMAC checks a signature written "<algorithm>=<hex HMAC of
// body>": sha256 or sha512, and sha1 only when allowed.
func checkPrefixedHMAC(sig string, token, body []byte, allowSHA1 bool) error {
	algo, digest, ok := strings.Cut(sig, "=")
	if !ok {
		return fmt.Errorf("%w: no signature", errUnauthorized)
	}
	var h func() hash.Hash
	switch algo {
	case "sha256":
		h = sha256.New
	case "sha512":
		h = sha512.New
	case "sha1":
		if !allowSHA1 {
			return fmt.Errorf("%w: HMAC-SHA1 signatures are refused", errUnauthorized)
		}
		h = sha1.New
	default:
		return fmt.Errorf("%w: signature algorithm %q", errUnauthorized, algo)
	}
	if !hmacEqual(h, digest, token, body) {
		return fmt.Errorf("%w: the signature does not match", errUnauthorized)
	}
	return nil
}

// hmacEqual compares a hex HMAC with the HMAC of body, in constant time.
func hmacEqual(h func() hash.Hash, hexSig string, token, body []byte) bool {
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) == 0 {
		return false
	}
	m := hmac.New(h, token)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// equal compares a header with the token in constant time.
func equal(header string, token []byte) bool {
	return header != "" && subtle.ConstantTimeCompare([]byte(header), token) == 1
}

func decode(body []byte, v any) error {
	if len(body) == 0 {
		return errors.New("empty body")
	}
	return json.Unmarshal(body, v)
}
