package mcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/control"
	"github.com/weirhq/weir/internal/redact"
	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/repo"
	"github.com/weirhq/weir/internal/up"
)

// renderInput is the input of build_kustomization and diff_kustomization.
type renderInput struct {
	Name      string `json:"name" jsonschema:"the name of the Kustomization"`
	Namespace string `json:"namespace,omitempty" jsonschema:"its namespace; empty: flux-system"`
	Path      string `json:"path,omitempty" jsonschema:"a local folder to render instead of the source's artifact: the Kustomization's spec.path in a checkout of its repository, on the machine the server runs on"`
	Repo      string `json:"repo,omitempty" jsonschema:"with path: the root of the repository; empty: the Git root above path"`
}

// rendered is what a Kustomization renders to.
type rendered struct {
	ks      *kustomizev1.Kustomization
	objects []*unstructured.Unstructured
	// from says what was rendered: the source's artifact or a folder.
	from string
	// secrets holds every value the render read from a Secret, to be
	// masked wherever it appears in what the tool returns.
	secrets *redact.Secrets
	report  render.Report
}

// renderFromSource renders the cluster's Kustomization from its source's
// current artifact, with the values (substituteFrom) its cluster gives.
// mask replaces the Secrets' values, for output a person reads; a diff
// needs them as they are, to compare, and masks its own output.
func (s *Server) renderFromSource(ctx context.Context, in renderInput, mask bool) (*rendered, error) {
	k, _ := control.LookupKind(kustomizev1.KustomizationKind)
	obj, err := control.Get(ctx, s.opts.Client, k, client.ObjectKey{Namespace: orDefault(in.Namespace), Name: in.Name})
	if err != nil {
		return nil, err
	}
	ks := obj.(*kustomizev1.Kustomization)
	srcKind, srcKey, err := sourceOf(ks)
	if err != nil {
		return nil, err
	}
	src, err := control.Get(ctx, s.opts.Client, srcKind, srcKey)
	if err != nil {
		return nil, err
	}
	withArtifact, ok := src.(interface{ GetArtifact() *meta.Artifact })
	if !ok || withArtifact.GetArtifact() == nil {
		return nil, fmt.Errorf("%s %s has no artifact yet: it has not fetched anything (see get_flux_resources)", srcKind.Name, srcKey)
	}
	a := withArtifact.GetArtifact()
	dir, err := os.MkdirTemp("", "weir-mcp-artifact-")
	if err != nil {
		return nil, fmt.Errorf("creating a work folder: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := fetchArtifact(ctx, a, dir); err != nil {
		return nil, fmt.Errorf("fetching the artifact of %s %s: %w", srcKind.Name, srcKey, err)
	}
	r := &rendered{ks: ks, secrets: &redact.Secrets{}, from: fmt.Sprintf("%s %s at %s", srcKind.Name, srcKey, a.Revision)}
	spec := ks.Spec
	if mask {
		// As weir build: the Kustomization's own decryption is not done.
		spec.Decryption = nil
	}
	r.objects, err = render.Build(ctx, render.Options{
		Root: dir, Namespace: ks.Namespace, Spec: spec, Values: render.ClusterValues{Reader: s.opts.Client},
		MaskSecrets: mask, Secrets: r.secrets,
	})
	if err != nil {
		return nil, err
	}
	repo.SetOwnerLabels(r.objects, ks.Name, ks.Namespace)
	return r, nil
}

// renderFromPath renders a local folder offline, as `weir build ks`: the
// Kustomization and the values it substitutes are read from the
// repository's files, never from the cluster.
func (s *Server) renderFromPath(ctx context.Context, in renderInput) (*rendered, error) {
	root, rel, err := resolvePath(in.Path, in.Repo)
	if err != nil {
		return nil, err
	}
	rp, err := repo.Open(root)
	if err != nil {
		return nil, err
	}
	q := repo.Query{Name: in.Name, Namespace: in.Namespace, Path: filepath.ToSlash(rel)}
	m, err := rp.FindKustomization(q)
	if err != nil {
		return nil, err
	}
	ks := m.Kustomization
	if ks.Namespace == "" {
		ks.Namespace = orDefault(in.Namespace)
	}
	spec := ks.Spec
	spec.Path = "./" + filepath.ToSlash(rel)
	spec.Decryption = nil
	r := &rendered{ks: ks, secrets: &redact.Secrets{}, from: "folder " + in.Path}
	r.objects, err = render.Build(ctx, render.Options{
		Root: root, Namespace: ks.Namespace, Spec: spec, Values: m.Cluster.Values(nil),
		MaskSecrets: true, KeepUnavailable: true, Report: &r.report, Secrets: r.secrets,
	})
	if err != nil {
		return nil, err
	}
	repo.SetOwnerLabels(r.objects, ks.Name, ks.Namespace)
	return r, nil
}

// maxArtifact bounds the artifact downloaded; artifact.Unpack bounds what
// it unpacks to.
const maxArtifact = 512 << 20

// fetchArtifact downloads the artifact a from weir's artifact server,
// checks its digest and unpacks it into dir.
func fetchArtifact(ctx context.Context, a *meta.Artifact, dir string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("downloading it (the artifact server must be reachable from where this server runs): %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading it: %s", resp.Status)
	}
	h := sha256.New()
	body := io.TeeReader(io.LimitReader(resp.Body, maxArtifact), h)
	if err := artifact.Unpack(ctx, body, dir, "artifact "+a.Revision); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return err
	}
	if want, ok := strings.CutPrefix(a.Digest, "sha256:"); ok && hex.EncodeToString(h.Sum(nil)) != want {
		return fmt.Errorf("its digest is not %s: it changed while it was read, try again", a.Digest)
	}
	return nil
}

// resolvePath makes path and root absolute (root defaulting to the Git
// root above path) and returns path relative to root, refusing a path
// outside it.
func resolvePath(path, root string) (string, string, error) {
	dir, err := filepath.Abs(path)
	if err != nil {
		return "", "", fmt.Errorf("resolving path: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", "", fmt.Errorf("path %s is not a folder on the machine this server runs on", path)
	}
	if root == "" {
		root = repositoryRoot(dir)
	}
	if root, err = filepath.Abs(root); err != nil {
		return "", "", fmt.Errorf("resolving repo: %w", err)
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", "", fmt.Errorf("path %s is not inside the repository %s", path, root)
	}
	return root, rel, nil
}

// repositoryRoot is the closest folder at or above dir holding .git or a
// root Kustomization by weir up's convention, as `weir build` finds it.
func repositoryRoot(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil || up.FindRoot(d) != "" {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// toYAML prints objects as a YAML stream, every value read from a Secret
// masked: in the objects' fields, so that the YAML stays what it says,
// and in the text again, should a value have been split across fields.
func (r *rendered) toYAML() (string, error) {
	var b strings.Builder
	for _, o := range r.objects {
		y, err := yaml.Marshal(maskValues(o.Object, r.secrets))
		if err != nil {
			return "", fmt.Errorf("encoding %s/%s: %w", o.GetKind(), o.GetName(), err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return r.secrets.Mask(b.String()), nil
}

// maskValues returns v with every string in it masked by secrets.
func maskValues(v any, secrets *redact.Secrets) any {
	switch v := v.(type) {
	case string:
		return secrets.Mask(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = maskValues(e, secrets)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = maskValues(e, secrets)
		}
		return out
	}
	return v
}
