package render

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resource"

	"github.com/weirhq/weir/internal/redact"
)

// Values gives the ConfigMaps and Secrets that postBuild.substituteFrom and
// decryption.secretRef name, in the Kustomization's namespace.
//
// Implementations return an error for which IsNotFound is true (build it
// with k8s.io/apimachinery/pkg/api/errors.NewNotFound) when the object does
// not exist: an optional substituteFrom source is then skipped.
type Values interface {
	ConfigMap(ctx context.Context, namespace, name string) (map[string]string, error)
	Secret(ctx context.Context, namespace, name string) (map[string][]byte, error)
}

// IsNotFound tells whether err, returned by a Values, says that the object
// does not exist.
func IsNotFound(err error) bool { return apierrors.IsNotFound(err) }

// Options says what to render.
type Options struct {
	// Root is the source artifact, unpacked. Nothing outside it is read.
	Root string
	// Namespace is the Kustomization's namespace, where the substituteFrom
	// and decryption objects live.
	Namespace string
	// Spec is the Kustomization's spec. Build reads path, patches, images,
	// components, ignoreMissingComponents, namePrefix, nameSuffix,
	// commonMetadata, targetNamespace, buildMetadata, postBuild and
	// decryption.
	Spec kustomizev1.KustomizationSpec
	// Values reads the objects that substituteFrom and decryption.secretRef
	// name. When nil, a substituteFrom entry or an encrypted document fails
	// with an error saying so (with MaskSecrets, encrypted documents are
	// masked instead of decrypted).
	Values Values
	// NoRemoteBases refuses kustomizations that reference anything remote
	// (Git bases, HTTP resources), before kustomize reaches the network.
	NoRemoteBases bool
	// MaskSecrets replaces the values of every Secret's data and stringData
	// with "**SOPS**" masks and drops SOPS metadata from every object, for
	// output a person reads (weir build).
	MaskSecrets bool
	// KeepUnavailable renders offline what a cluster would give values
	// to: a substituteFrom source that Values cannot give (not found and
	// not optional, or an *UnavailableError: encrypted, ambiguous), or a
	// value that is SOPS ciphertext, is skipped instead of failing the
	// render, and the variables only it could set are left as written
	// (not replaced by their default or ""). Report says which.
	KeepUnavailable bool
	// Report, when not nil, is filled with the sources and variables an
	// offline render (KeepUnavailable) could not resolve.
	Report *Report
	// Secrets, when not nil, records the secret values of the render, for
	// the caller to mask them in its messages (an API server that rejects
	// an object quotes the value it rejects): the values of the
	// substituteFrom Secrets, the age keys of the decryption Secret, the
	// values that SOPS decrypted, and the data and stringData of every
	// Secret rendered.
	Secrets *redact.Secrets
}

// Step names the stage of the pipeline that failed.
type Step string

// The stages of a render.
const (
	StepPath       Step = "path"
	StepBuild      Step = "kustomize build"
	StepDecrypt    Step = "decryption"
	StepSubstitute Step = "substitution"
)

// Error is the error Build returns: Step says which stage failed, and the
// message, meant for the Kustomization's Ready condition, names the file or
// object at fault with paths relative to the source root. It never holds
// secret values.
type Error struct {
	Step Step
	Err  error
	// root is stripped from the messages of the libraries Build calls,
	// which speak in absolute paths.
	root string
}

// Error returns the message, with paths relative to the source root.
func (e *Error) Error() string {
	if e.root == "" || e.root == string(filepath.Separator) {
		return e.Err.Error()
	}
	return stripRoot(e.Err.Error(), e.root)
}

// stripRoot rewrites the absolute paths under root in msg as paths
// relative to it ("." for root itself).
func stripRoot(msg, root string) string {
	var b strings.Builder
	for {
		i := strings.Index(msg, root)
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		b.WriteString(msg[:i])
		rest := msg[i+len(root):]
		switch {
		case strings.HasPrefix(rest, string(filepath.Separator)):
			rest = rest[1:]
		case rest == "" || strings.IndexByte("'\" :,;)]}", rest[0]) >= 0:
			b.WriteString(".")
		default: // another path that starts like root
			b.WriteString(root)
		}
		msg = rest
	}
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Build renders the objects the Kustomization would apply, in kustomize's
// output order, the way Flux's kustomize-controller does:
//
//  1. spec.path is resolved inside Root; the source is read into memory.
//  2. The path's kustomization (or one generated from the manifests under
//     it) gets the spec's overlay: targetNamespace, namePrefix/nameSuffix,
//     patches, images, components, buildMetadata.
//  3. SOPS-encrypted files used by secretGenerators and patches are
//     decrypted (spec.decryption); as in Flux, configMapGenerator files are
//     not, so that decrypted data never lands in a ConfigMap.
//  4. kustomize builds it, with plugins disabled, reading only the source.
//  5. Each object is decrypted (spec.decryption), then variables are
//     substituted (spec.postBuild).
//  6. A Secret still SOPS-encrypted (no spec.decryption, and not annotated
//     kustomize.toolkit.fluxcd.io/decrypt: disabled) fails the render, as it
//     fails Flux's apply, unless MaskSecrets is set.
//  7. commonMetadata is set on every object; Secrets are masked when
//     MaskSecrets is set.
//
// Decrypted data stays in memory. Objects are not labelled with the
// Kustomization's name: the apply step does that. Errors are *Error
// values, except the context's own when ctx ends.
func Build(ctx context.Context, opts Options) ([]*unstructured.Unstructured, error) {
	root, dir, err := resolvePath(opts.Root, opts.Spec.Path)
	if err != nil {
		return nil, &Error{Step: StepPath, Err: err}
	}
	fs, err := loadSource(root, !opts.NoRemoteBases)
	if err != nil {
		return nil, &Error{Step: StepPath, Err: err, root: root}
	}
	// The source is read as the render reaches it: a folder that could
	// not be read (too large, an alias bomb) is the cause of whatever a
	// step then says, and what the render read is incomplete.
	fail := func(step Step, err error) error {
		if serr := sourceError(fs); serr != nil {
			step, err = StepPath, serr
		}
		return &Error{Step: step, Err: err, root: root}
	}

	dec := newDecryptor(opts)
	decrypting := dec != nil && dec.canDecrypt()
	ov, err := writeOverlay(fs, root, dir, opts.Spec)
	if err != nil {
		return nil, fail(StepBuild, err)
	}
	if opts.NoRemoteBases {
		if err := refuseRemote(fs, root, dir); err != nil {
			return nil, fail(StepBuild, err)
		}
	}
	if decrypting {
		if err := dec.loadKeys(ctx); err != nil {
			return nil, fail(StepDecrypt, err)
		}
		if err := dec.decryptSources(fs, root, dir); err != nil {
			return nil, fail(StepDecrypt, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	custom, err := usesOpenAPI(fs, root, dir)
	if err != nil {
		return nil, fail(StepBuild, fmt.Errorf("kustomize build failed: %w", err))
	}
	m, err := kustomizeBuild(fs, dir, custom)
	if opts.Report != nil {
		opts.Report.Reads = readsOf(fs, root)
	}
	if err != nil || sourceError(fs) != nil {
		return nil, fail(StepBuild, fmt.Errorf("kustomize build failed: %w", err))
	}

	vars, err := loadVariables(ctx, opts)
	if err != nil {
		return nil, fail(StepSubstitute, err)
	}

	rel, _ := filepath.Rel(root, dir)
	objects := make([]*unstructured.Unstructured, 0, m.Size())
	for _, res := range m.Resources() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		where := origin(res, rel)
		if res.GetName() == "" || res.GetKind() == "" || res.GetApiVersion() == "" {
			what := "an object in " + where
			if where == describe(res) {
				what = where
			}
			return nil, fail(StepBuild, fmt.Errorf("%s has no apiVersion, kind or name", what))
		}
		if decrypting {
			if err := dec.decryptResource(res, where); err != nil {
				return nil, fail(StepDecrypt, err)
			}
		}
		if !opts.MaskSecrets && isEncryptedSecret(res) {
			return nil, fail(StepDecrypt, encryptedSecretError(res, where, opts.Spec.Decryption))
		}
		if !ov.keepOrigin {
			if err := res.SetOrigin(nil); err != nil {
				return nil, fail(StepBuild, fmt.Errorf("%s: %w", describe(res), err))
			}
		}
		if vars != nil {
			if err := substitute(res, vars, opts.Report); err != nil {
				return nil, fail(StepSubstitute, fmt.Errorf("substituting variables in %s: %w", describe(res), err))
			}
		}
		u, err := toUnstructured(res)
		if err != nil {
			return nil, fail(StepBuild, fmt.Errorf("%s: %w", describe(res), err))
		}
		recordSecretData(opts.Secrets, u)
		objects = append(objects, u)
	}

	if cm := opts.Spec.CommonMetadata; cm != nil {
		setCommonMetadata(objects, cm.Labels, cm.Annotations)
	}
	if opts.MaskSecrets {
		if opts.Report != nil {
			opts.Report.SecretFingerprints = FingerprintSecrets(objects)
		}
		if err := MaskSecrets(objects); err != nil {
			return nil, fail(StepDecrypt, err)
		}
	}
	return objects, nil
}

// toUnstructured converts through JSON so that numbers come out as int64
// and float64, as the rest of client-go expects.
func toUnstructured(res *resource.Resource) (*unstructured.Unstructured, error) {
	data, err := res.MarshalJSON()
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return u, nil
}

// setCommonMetadata sets the labels and annotations on every object,
// overriding those of the same keys, as Flux does before applying.
func setCommonMetadata(objects []*unstructured.Unstructured, labels, annotations map[string]string) {
	for _, u := range objects {
		if len(labels) > 0 {
			l := u.GetLabels()
			if l == nil {
				l = make(map[string]string, len(labels))
			}
			for k, v := range labels {
				l[k] = v
			}
			u.SetLabels(l)
		}
		if len(annotations) > 0 {
			a := u.GetAnnotations()
			if a == nil {
				a = make(map[string]string, len(annotations))
			}
			for k, v := range annotations {
				a[k] = v
			}
			u.SetAnnotations(a)
		}
	}
}

// describe names an object as a user reads it: Kind namespace/name.
func describe(res *resource.Resource) string {
	if ns := res.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", res.GetKind(), ns, res.GetName())
	}
	return fmt.Sprintf("%s %s", res.GetKind(), res.GetName())
}

// origin names where an object came from: its file relative to the source
// root when kustomize recorded it (see writeOverlay), else the object.
func origin(res *resource.Resource, rel string) string {
	o, err := res.GetOrigin()
	if err != nil || o == nil {
		return describe(res)
	}
	switch {
	case o.Repo != "":
		s := o.Repo + "//" + o.Path
		if o.Ref != "" {
			s += "?ref=" + o.Ref
		}
		return s
	case o.Path != "":
		return filepath.ToSlash(filepath.Join(rel, o.Path))
	case o.ConfiguredIn != "":
		return fmt.Sprintf("%s (generated by %s)", describe(res), filepath.ToSlash(filepath.Join(rel, o.ConfiguredIn)))
	}
	return describe(res)
}

// errNoValues is wrapped when a spec field needs a cluster object and
// Options.Values is nil.
var errNoValues = errors.New("no cluster values are available to this render")
