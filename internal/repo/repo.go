// Package repo reads a cluster repository's manifests from disk, without a
// cluster: the Flux objects it declares and the ConfigMaps and Secrets that
// their substitutions name. `weir build` uses it to render offline.
package repo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// maxFile bounds the size of one manifest file read.
const maxFile = 4 << 20

// Manifests returns every object of the YAML files under root, skipping
// folders that hold no manifests (.git, .weir) and files that do not
// parse as Kubernetes objects, such as Helm values or kustomize configs
// without a kind.
func Manifests(root string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (d.Name() == ".git" || d.Name() == ".weir") {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(path)
		if (ext != ".yaml" && ext != ".yml") || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > maxFile {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		out = append(out, decode(b)...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the manifests under %s: %w", root, err)
	}
	return out, nil
}

// Decode returns the Kubernetes objects of a multi-document YAML stream,
// skipping documents that are not objects (no kind or apiVersion).
func Decode(b []byte) []*unstructured.Unstructured { return decode(b) }

// decode returns the objects of a multi-document YAML file.
func decode(b []byte) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) || err != nil {
			return out
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil || u.Object == nil || u.GetKind() == "" || u.GetAPIVersion() == "" {
			continue
		}
		out = append(out, u)
	}
}

// FindKustomization returns the Flux Kustomization called name (in
// namespace, when not empty) among objects.
func FindKustomization(objects []*unstructured.Unstructured, namespace, name string) (*kustomizev1.Kustomization, error) {
	var found []*kustomizev1.Kustomization
	for _, u := range objects {
		if u.GetKind() != kustomizev1.KustomizationKind || !strings.HasPrefix(u.GetAPIVersion(), kustomizev1.GroupVersion.Group+"/") || u.GetName() != name {
			continue
		}
		if namespace != "" && u.GetNamespace() != "" && u.GetNamespace() != namespace {
			continue
		}
		ks := &kustomizev1.Kustomization{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, ks); err != nil {
			return nil, fmt.Errorf("Kustomization %s does not parse: %w", name, err)
		}
		found = append(found, ks)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no Kustomization named %s in the repository", name)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%d Kustomizations named %s in the repository: pass -n to choose", len(found), name)
}
