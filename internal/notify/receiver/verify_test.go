package receiver

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Nexus signs with HMAC-SHA1.
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"testing"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
)

const testToken = "t0ken"

func mac(h func() hash.Hash, body []byte) string {
	m := hmac.New(h, []byte(testToken))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// Each sender's request, as the sender signs or shapes it, and what weir
// makes of it.
func TestVerifyEachType(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	cases := []struct {
		name, typ string
		events    []string
		h         http.Header
		body      []byte
		reconcile bool
		err       error
	}{
		{"generic", notificationv1.GenericReceiver, nil, nil, body, true, nil},
		{"generic-hmac sha256", notificationv1.GenericHMACReceiver, nil, headers("X-Signature", "sha256="+mac(sha256.New, body)), body, true, nil},
		{"generic-hmac sha512", notificationv1.GenericHMACReceiver, nil, headers("X-Signature", "sha512="+mac(sha512.New, body)), body, true, nil},
		{"generic-hmac sha1 refused", notificationv1.GenericHMACReceiver, nil, headers("X-Signature", "sha1="+mac(sha1.New, body)), body, false, errUnauthorized},
		{"generic-hmac wrong", notificationv1.GenericHMACReceiver, nil, headers("X-Signature", "sha256="+mac(sha256.New, []byte("other"))), body, false, errUnauthorized},
		{"gitlab", notificationv1.GitLabReceiver, []string{"Push Hook"}, headers("X-Gitlab-Token", testToken, "X-Gitlab-Event", "Push Hook"), body, true, nil},
		{"gitlab other event", notificationv1.GitLabReceiver, []string{"Push Hook"}, headers("X-Gitlab-Token", testToken, "X-Gitlab-Event", "Tag Push Hook"), body, false, nil},
		{"gitlab wrong token", notificationv1.GitLabReceiver, nil, headers("X-Gitlab-Token", "nope"), body, false, errUnauthorized},
		{"bitbucket", notificationv1.BitbucketReceiver, nil, headers("X-Hub-Signature", "sha256="+mac(sha256.New, body), "X-Event-Key", "repo:refs_changed"), body, true, nil},
		{"bitbucket ping", notificationv1.BitbucketReceiver, nil, headers("X-Hub-Signature", "sha256="+mac(sha256.New, body), "X-Event-Key", "diagnostics:ping"), body, false, nil},
		{"harbor", notificationv1.HarborReceiver, nil, headers("Authorization", testToken), body, true, nil},
		{"harbor wrong", notificationv1.HarborReceiver, nil, headers("Authorization", "Bearer x"), body, false, errUnauthorized},
		{"dockerhub", notificationv1.DockerHubReceiver, nil, nil, []byte(`{"push_data":{"tag":"latest"},"repository":{"repo_name":"me/app","repo_url":"https://hub.docker.com/r/me/app"}}`), true, nil},
		{"dockerhub not a push", notificationv1.DockerHubReceiver, nil, nil, []byte(`{"hello":1}`), false, errBadRequest},
		{"quay", notificationv1.QuayReceiver, nil, nil, []byte(`{"docker_url":"quay.io/me/app","updated_tags":["1.0"]}`), true, nil},
		{"acr", notificationv1.ACRReceiver, nil, nil, []byte(`{"action":"push","target":{"repository":"app","tag":"1.0"}}`), true, nil},
		{"nexus", notificationv1.NexusReceiver, nil, headers("X-Nexus-Webhook-Signature", mac(sha1.New, []byte(`{"action":"CREATED","repositoryName":"docker"}`))), []byte(`{"action":"CREATED","repositoryName":"docker"}`), true, nil},
		{"nexus unsigned", notificationv1.NexusReceiver, nil, nil, []byte(`{"action":"CREATED","repositoryName":"docker"}`), false, errUnauthorized},
		{"cdevents", notificationv1.CDEventsReceiver, []string{"dev.cdevents.change.merged.0.1.2"}, headers("Ce-Type", "dev.cdevents.change.merged.0.1.2"), []byte(`{"context":{}}`), true, nil},
		{"cdevents no type", notificationv1.CDEventsReceiver, nil, nil, []byte(`{}`), false, errBadRequest},
		{"gcr", notificationv1.GCRReceiver, nil, nil, body, false, errBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := verify(c.typ, []byte(testToken), c.events, c.h, c.body, options{})
			if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			if v.reconcile != c.reconcile {
				t.Errorf("reconcile %v, want %v (%s)", v.reconcile, c.reconcile, v.note)
			}
		})
	}
}

// FuzzVerify: any request, of any type, is answered without a panic, and a
// signed type never accepts an unsigned request.
func FuzzVerify(f *testing.F) {
	f.Add("github", "sha256=00", "push", []byte(`{}`))
	f.Add("generic-hmac", "sha512=zz", "", []byte(`{"a":1}`))
	f.Add("nexus", "", "", []byte(`{"action":"CREATED","repositoryName":"x"}`))
	f.Add("dockerhub", "", "", []byte(`{"push_data":{},"repository":{"repo_name":"a"}}`))
	types := []string{"generic", "generic-hmac", "github", "gitlab", "bitbucket", "harbor", "dockerhub", "quay", "nexus", "acr", "cdevents", "gcr", "other"}
	f.Fuzz(func(t *testing.T, typ, sig, event string, body []byte) {
		for _, ty := range append(types, typ) {
			h := headers("X-Hub-Signature-256", sig, "X-Signature", sig, "X-Hub-Signature", sig, "X-GitHub-Event", event,
				"X-Gitlab-Event", event, "X-Event-Key", event, "Ce-Type", event, "X-Nexus-Webhook-Signature", sig)
			v, err := verify(ty, []byte(testToken), []string{"push"}, h, body, options{})
			if err == nil && v.reconcile && (ty == "github" || ty == "generic-hmac" || ty == "bitbucket" || ty == "nexus") {
				t.Fatalf("type %s accepted a request signed %q that the fuzzer cannot have signed", ty, sig)
			}
		}
	})
}
