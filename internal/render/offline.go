package render

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/getsops/sops/v3/cmd/sops/formats"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// UnavailableError is what a Values returns for an object whose values it
// cannot give although the object exists, or may exist, in the cluster: a
// Secret that is SOPS-encrypted in the repository and no key was given,
// a ConfigMap declared twice with different data. With
// Options.KeepUnavailable, Build renders anyway and leaves the variables
// that only that object could set as written.
type UnavailableError struct {
	Kind, Namespace, Name string
	// Reason says why, for the user; it never holds secret values.
	Reason string
}

// Error names the object and the reason.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%s '%s' in namespace '%s': %s", e.Kind, e.Name, e.Namespace, e.Reason)
}

// IsUnavailable tells whether err holds an *UnavailableError.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// Report is what an offline Build could not know, filled when
// Options.Report is set.
type Report struct {
	// Unavailable lists the substituteFrom sources whose values were not
	// read (not in the repository, encrypted, ambiguous), in spec order.
	Unavailable []*UnavailableError
	// Unresolved lists, sorted, the variables left as written because
	// only an unavailable source could have set them.
	Unresolved []string
	// SecretFingerprints hold, with MaskSecrets, a keyed digest of each
	// value of each Secret (by namespace/name, then key) before it was
	// masked: two renderings of one process tell a changed value by them,
	// and nobody can tell a value from them (the key is random and never
	// leaves the process).
	SecretFingerprints map[string]map[string]string
	// Reads is what the render asked of the source, for `weir test
	// --since` to tell whether a change can alter it.
	Reads Reads
}

// ciphertext is how SOPS writes an encrypted value.
var ciphertext = regexp.MustCompile(`ENC\[[A-Z0-9_]+,data:`)

// IsCiphertext tells whether a value is (or holds) a SOPS-encrypted value,
// ENC[AES256_GCM,data:...]: such a value is never substituted.
func IsCiphertext(v string) bool { return ciphertext.MatchString(v) }

// variableRef finds the variables a text refers to: ${NAME, not escaped
// as $${NAME.
var variableRef = regexp.MustCompile(`\$+\{([_[:alpha:]][_[:alpha:][:digit:]]*)`)

// keepUnset escapes, in text, every reference to a variable that vars does
// not set, so that envsubst leaves it as written (defaults included), and
// returns the names it escaped.
func keepUnset(text string, vars map[string]string) (string, []string) {
	var names []string
	out := variableRef.ReplaceAllStringFunc(text, func(m string) string {
		dollars := strings.IndexByte(m, '{')
		name := m[dollars+1:]
		if dollars%2 == 0 { // $${NAME is already an escape
			return m
		}
		if _, ok := vars[name]; ok {
			return m
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return "$" + m
	})
	return out, names
}

// AgeKeys are age identities a person gives the command line (weir build
// --age-key-file) to decrypt SOPS-encrypted objects offline.
type AgeKeys struct {
	dec *decryptor
}

// ParseAgeKeys parses the text of age key files (one AGE-SECRET-KEY a
// line, # comments); from names where the keys come from, for messages.
func ParseAgeKeys(text, from string) (*AgeKeys, error) {
	ids, err := parseAgeKeys(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return &AgeKeys{dec: &decryptor{ids: ids, loaded: true, secret: from, keysFrom: from}}, nil
}

// DecryptObject returns the plain copy of a SOPS-encrypted object (one
// with sops metadata); the error never holds secret values.
func (k *AgeKeys) DecryptObject(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	js, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	plain, err := k.dec.decrypt(js, formats.Json, formats.Json)
	if err != nil {
		return nil, err
	}
	out := &unstructured.Unstructured{}
	if err := out.UnmarshalJSON(plain); err != nil {
		return nil, fmt.Errorf("the decrypted object does not parse: %w", err)
	}
	return out, nil
}

// unavailable records a source that could not be read; it fails the
// render unless the options keep unavailable sources.
func (opts Options) unavailable(ctx context.Context, err *UnavailableError) error {
	if !opts.KeepUnavailable {
		return fmt.Errorf("postBuild.substituteFrom: %w", err)
	}
	if opts.Report != nil {
		opts.Report.Unavailable = append(opts.Report.Unavailable, err)
	}
	return ctx.Err()
}
