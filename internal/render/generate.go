package render

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/kustomize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/konfig"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// overlay says what writeOverlay did.
type overlay struct {
	// keepOrigin is false when writeOverlay asked kustomize for origin
	// annotations that the user did not: Build removes them again.
	keepOrigin bool
}

// writeOverlay writes, into fs, the kustomization that Flux builds for dir:
// the folder's own kustomization.yaml (or .yml, or Kustomization), or one
// listing every manifest under dir (a subfolder with its own kustomization
// counts as one resource), with the spec's targetNamespace, namePrefix,
// nameSuffix, patches, images, components and buildMetadata on top. It is
// fluxcd/pkg/kustomize's Generator, reading the source on disk (read only)
// and writing its result to memory only.
//
// kustomize is asked to annotate each object with the file it came from,
// so that an error about the object (it is invalid, still encrypted, or
// cannot be decrypted) can name the file; Build removes the annotations
// again unless the user asked for them.
func writeOverlay(fs filesys.FileSystem, root, dir string, spec kustomizev1.KustomizationSpec) (overlay, error) {
	ov := overlay{keepOrigin: true}
	// The generator names no file in its errors and drops the fields it
	// does not know: read the folder's kustomization first, as kustomize
	// reads it, so that a broken one is named and a misspelt field refused.
	k0, _, err := readKustomization(fs, dir)
	if err != nil {
		return ov, err
	}
	if k0 == nil {
		// The generator lists the folder's manifests from the disk,
		// below the file system the render records.
		noteGenerated(fs, dir)
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&kustomizev1.Kustomization{Spec: spec})
	if err != nil {
		return ov, fmt.Errorf("reading the Kustomization spec: %w", err)
	}
	gen := kustomize.NewGenerator(root, unstructured.Unstructured{Object: obj})
	data, kfile, _, err := gen.GenerateManifest(dir)
	if err != nil {
		return ov, fmt.Errorf("generating the kustomization: %w", err)
	}
	var k kustypes.Kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return ov, fmt.Errorf("reading the generated kustomization: %w", err)
	}
	if !slices.Contains(k.BuildMetadata, kustypes.OriginAnnotations) {
		ov.keepOrigin = false
		k.BuildMetadata = append(k.BuildMetadata, kustypes.OriginAnnotations)
		if data, err = yaml.Marshal(k); err != nil {
			return ov, fmt.Errorf("writing the generated kustomization: %w", err)
		}
	}
	if err := fs.WriteFile(kfile, data); err != nil {
		return ov, fmt.Errorf("writing the generated kustomization: %w", err)
	}
	return ov, nil
}

// readKustomization reads the kustomization file of dir, or returns nil
// when it has none. Like kustomize, it refuses fields that a kustomization
// does not have.
func readKustomization(fs filesys.FileSystem, dir string) (*kustypes.Kustomization, string, error) {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		p := filepath.Join(dir, name)
		if !fs.Exists(p) || fs.IsDir(p) {
			continue
		}
		data, err := fs.ReadFile(p)
		if err != nil {
			return nil, p, err
		}
		var k kustypes.Kustomization
		if err := yaml.UnmarshalStrict(data, &k); err != nil {
			return nil, p, fmt.Errorf("reading %s: %w", p, err)
		}
		return &k, p, nil
	}
	return nil, "", nil
}

// walkKustomizations calls visit with every kustomization file reachable
// from dir through resources, bases and components that are folders of the
// source, each once, as Flux's decryptor walks them.
func walkKustomizations(fs filesys.FileSystem, root, dir string, visit func(dir, file string, k *kustypes.Kustomization) error) error {
	seen := map[string]bool{}
	var walk func(dir string) error
	walk = func(dir string) error {
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		k, file, err := readKustomization(fs, dir)
		if err != nil || k == nil {
			return err
		}
		if err := visit(dir, file, k); err != nil {
			return err
		}
		for _, refs := range [][]string{k.Resources, k.Bases, k.Components} {
			for _, r := range refs {
				if looksRemote(r) || filepath.IsAbs(r) {
					continue
				}
				p := filepath.Join(dir, r)
				if !within(root, p) || !fs.IsDir(p) {
					continue
				}
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(dir)
}

// scpLike matches Git's user@host:path form.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:`)

// looksRemote tells whether a kustomization reference is a URL or a Git
// repository rather than a path, in the forms kustomize accepts.
func looksRemote(ref string) bool {
	l := strings.ToLower(ref)
	for _, p := range []string{"git::", "gh:", "github.com/", "github.com:"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return strings.Contains(l, "://") || scpLike.MatchString(ref)
}

// refuseRemote fails when a kustomization reachable from dir refers to a
// remote base or file, so that with remote bases disabled kustomize never
// reaches the network (Flux's --no-remote-bases only fails after the
// clone).
func refuseRemote(fs filesys.FileSystem, root, dir string) error {
	return walkKustomizations(fs, root, dir, func(_, file string, k *kustypes.Kustomization) error {
		for _, ref := range references(k) {
			if looksRemote(ref) {
				return fmt.Errorf("%s refers to '%s', and remote bases are disabled (--no-remote-bases)", file, ref)
			}
		}
		return nil
	})
}

// references lists everything a kustomization loads by path or URL.
func references(k *kustypes.Kustomization) []string {
	var refs []string
	refs = append(refs, k.Resources...)
	refs = append(refs, k.Bases...)
	refs = append(refs, k.Components...)
	refs = append(refs, k.Crds...)
	refs = append(refs, k.Configurations...)
	refs = append(refs, k.Generators...)
	refs = append(refs, k.Transformers...)
	refs = append(refs, k.Validators...)
	if p := k.OpenAPI["path"]; p != "" {
		refs = append(refs, p)
	}
	for _, p := range k.PatchesStrategicMerge {
		if s := string(p); !strings.Contains(s, "\n") {
			refs = append(refs, s)
		}
	}
	for _, p := range append(slices.Clone(k.Patches), k.PatchesJson6902...) {
		if p.Path != "" {
			refs = append(refs, p.Path)
		}
	}
	for _, r := range k.Replacements {
		if r.Path != "" {
			refs = append(refs, r.Path)
		}
	}
	kv := func(s kustypes.KvPairSources) {
		for _, f := range s.FileSources {
			_, p := fileSource(f)
			refs = append(refs, p)
		}
		refs = append(refs, s.EnvSources...)
		if s.EnvSource != "" {
			refs = append(refs, s.EnvSource)
		}
	}
	for _, g := range k.ConfigMapGenerator {
		kv(g.KvPairSources)
	}
	for _, g := range k.SecretGenerator {
		kv(g.KvPairSources)
	}
	return refs
}

// fileSource splits a generator's files entry, written "path" or
// "key=path", into its key and path.
func fileSource(src string) (key, path string) {
	if k, p, ok := strings.Cut(src, "="); ok {
		return k, p
	}
	return src, src
}
