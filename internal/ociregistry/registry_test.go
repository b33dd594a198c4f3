package ociregistry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/weirhq/weir/internal/ociregistry"
)

func start(t *testing.T, opts ociregistry.Options) *ociregistry.Registry {
	t.Helper()
	r, err := ociregistry.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func TestRegistryListensOnLoopbackByDefault(t *testing.T) {
	r := start(t, ociregistry.Options{})
	if !strings.HasPrefix(r.Host, "127.0.0.1:") || r.Host == "127.0.0.1:0" {
		t.Errorf("host %s, want 127.0.0.1 on a free port", r.Host)
	}
	if got := r.URL("charts/app"); got != "oci://"+r.Host+"/charts/app" {
		t.Errorf("URL = %s", got)
	}
	if r.CACertPEM() != nil {
		t.Error("a plain HTTP registry has a CA certificate")
	}
}

func TestPushDirGivesTheSameDigestForTheSameFiles(t *testing.T) {
	r := start(t, ociregistry.Options{})
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "apps", "app.yaml"), "a: 1\n")
	first, err := r.PushDir(ctx, "manifests", "v1", dir, map[string]string{"org.opencontainers.image.revision": "main@sha1:1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.PushDir(ctx, "manifests", "v1", dir, map[string]string{"org.opencontainers.image.revision": "main@sha1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if first != again {
		t.Errorf("the same files gave %s, then %s", first, again)
	}
	writeFile(t, filepath.Join(dir, "apps", "app.yaml"), "a: 2\n")
	changed, err := r.PushDir(ctx, "manifests", "v1", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if changed == first {
		t.Error("other files gave the same digest")
	}

	m := manifest(t, r, "manifests:v1", nil)
	if m.Config.MediaType != ociregistry.FluxConfigMediaType || len(m.Layers) != 1 || m.Layers[0].MediaType != ociregistry.FluxContentMediaType {
		t.Errorf("not Flux's media types: config %s, layers %v", m.Config.MediaType, m.Layers)
	}
	if m.Digest != changed {
		t.Errorf("the tag points at %s, PushDir returned %s", m.Digest, changed)
	}
}

func TestBasicAuthKeepsOutAnonymousClients(t *testing.T) {
	r := start(t, ociregistry.Options{Username: "flux", Password: "s3cret"})
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "a: 1\n")
	if _, err := r.PushDir(ctx, "private", "v1", dir, nil); err != nil {
		t.Fatalf("the registry's own credentials were refused: %v", err)
	}
	ref, err := name.NewTag(r.Host+"/private:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(ref, remote.WithContext(ctx))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous HEAD: %v, want 401", err)
	}
	_, err = remote.Head(ref, remote.WithContext(ctx), remote.WithAuth(&authn.Basic{Username: "flux", Password: "wrong"}))
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %v, want 401", err)
	}
	before := r.Counts()
	if _, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuth(r.Auth())); err != nil {
		t.Fatal(err)
	}
	if got := r.Counts(); got.ManifestHeads != before.ManifestHeads+1 || got.ManifestGets != before.ManifestGets {
		t.Errorf("counts went from %+v to %+v after one HEAD", before, got)
	}
}

func TestTLSRegistryIsTrustedThroughItsCA(t *testing.T) {
	r := start(t, ociregistry.Options{TLS: true})
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "a: 1\n")
	digest, err := r.PushDir(ctx, "app", "v1", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(r.CACertPEM(), []byte("BEGIN CERTIFICATE")) {
		t.Fatal("no CA certificate")
	}
	ref, err := name.NewTag(r.Host + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithTransport(r.Transport()))
	if err != nil {
		t.Fatalf("HEAD over TLS with the registry's CA: %v", err)
	}
	if desc.Digest.String() != digest {
		t.Errorf("digest %s, want %s", desc.Digest, digest)
	}
	if _, err := remote.Head(ref, remote.WithContext(ctx)); err == nil {
		t.Error("a client without the CA trusted the registry")
	}
}

func TestStoppedRegistryRefusesConnections(t *testing.T) {
	r := start(t, ociregistry.Options{})
	r.Stop()
	r.Stop()
	resp, err := http.Get("http://" + r.Host + "/v2/")
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Fatal("a stopped registry answered")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
