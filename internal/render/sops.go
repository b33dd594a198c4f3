package render

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"filippo.io/age"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/cmd/sops/common"
	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resource"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/weirhq/weir/internal/redact"
)

const (
	// sopsProvider is the only decryption provider Flux knows.
	sopsProvider = "sops"
	// ageKeyExt ends the names of the decryption Secret's entries that
	// hold age identities.
	ageKeyExt = ".agekey"
	// decryptKey is the annotation that, set to "disabled", leaves an
	// object encrypted (for objects another controller decrypts).
	decryptKey = "kustomize.toolkit.fluxcd.io/decrypt"
	// maxEncryptedFileSize bounds a generator's encrypted file, as in Flux.
	maxEncryptedFileSize = 5 << 20
	// mask replaces Secret values when Options.MaskSecrets is set; it is
	// what `flux build` shows.
	mask = "**SOPS**"
)

// markers tell, for each format, that a document is SOPS-encrypted (its
// MAC is present). JSON also covers the binary format's JSON envelope.
var markers = []struct {
	format formats.Format
	marker []byte
}{
	{formats.Yaml, []byte("mac: ENC[")},
	{formats.Dotenv, []byte("sops_mac=ENC[")},
	{formats.Ini, []byte("[sops]")},
	{formats.Json, []byte(`"mac": "ENC[`)},
}

var formatNames = map[formats.Format]string{
	formats.Binary: "binary",
	formats.Dotenv: "dotenv",
	formats.Ini:    "INI",
	formats.Json:   "JSON",
	formats.Yaml:   "YAML",
}

func marker(f formats.Format) []byte {
	if f == formats.Binary {
		f = formats.Json
	}
	for _, m := range markers {
		if m.format == f {
			return m.marker
		}
	}
	return nil
}

// detectFormat returns the format of SOPS-encrypted data, or false when
// data is not encrypted.
func detectFormat(data []byte) (formats.Format, bool) {
	for _, m := range markers {
		if bytes.Contains(data, m.marker) {
			return m.format, true
		}
	}
	return formats.Binary, false
}

// formatForPath gives the format of a file or Secret key by its name.
func formatForPath(path string) formats.Format {
	if strings.HasSuffix(path, ".dockerconfigjson") {
		return formats.Json
	}
	return formats.FormatForPath(path)
}

// decryptor decrypts with the age identities of the Secret named by
// spec.decryption.secretRef, and with nothing else: no key files from the
// environment, no PGP keyring, no cloud KMS.
type decryptor struct {
	values    Values
	namespace string
	secret    string // spec.decryption.secretRef.name; empty: unset
	skip      bool   // MaskSecrets without Values: leave encrypted, mask
	loaded    bool
	ids       sopsage.ParsedIdentities
	// keysFrom names where the keys come from when they are not the
	// Secret's (weir build --age-key-file).
	keysFrom string
	secrets  *redact.Secrets // records the keys and the decrypted values
	// serviceAccount is spec.decryption.serviceAccountName: the identity
	// Flux uses for cloud KMS, which weir does not reach.
	serviceAccount string
}

// newDecryptor returns nil when the spec asks for no decryption.
func newDecryptor(opts Options) *decryptor {
	d := opts.Spec.Decryption
	if d == nil || d.Provider != sopsProvider {
		return nil
	}
	dec := &decryptor{values: opts.Values, namespace: opts.Namespace, secrets: opts.Secrets}
	if d.SecretRef != nil {
		dec.secret = d.SecretRef.Name
	}
	dec.serviceAccount = d.ServiceAccountName
	dec.skip = opts.Values == nil && opts.MaskSecrets
	return dec
}

// canDecrypt is false when encrypted data is to be masked, not decrypted.
func (d *decryptor) canDecrypt() bool { return !d.skip }

// loadKeys reads the age identities of the decryption Secret. Like Flux,
// a missing Secret fails the render even when nothing is encrypted. With
// no Values or no secretRef it does nothing: decrypt then says why it
// cannot.
func (d *decryptor) loadKeys(ctx context.Context) error {
	if d.values == nil || d.secret == "" {
		return nil
	}
	data, err := d.values.Secret(ctx, d.namespace, d.secret)
	if err != nil {
		if IsNotFound(err) {
			return fmt.Errorf("decryption Secret '%s' not found in namespace '%s'", d.secret, d.namespace)
		}
		return fmt.Errorf("reading decryption Secret '%s': %w", d.secret, err)
	}
	names := make([]string, 0, len(data))
	for name := range data {
		if filepath.Ext(name) == ageKeyExt {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		d.secrets.Add(string(data[name]))
		ids, err := parseAgeKeys(string(data[name]))
		if err != nil {
			return fmt.Errorf("decryption Secret '%s': entry '%s': %w", d.secret, name, err)
		}
		d.ids = append(d.ids, ids...)
	}
	d.loaded = true
	return nil
}

// parseAgeKeys parses an age key file: one identity a line, blank lines
// and # comments ignored. Plugin identities are refused (they would run
// programs). Errors name the line, never its content.
func parseAgeKeys(text string) ([]age.Identity, error) {
	var ids []age.Identity
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		var id age.Identity
		var err error
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "AGE-SECRET-KEY-PQ-1"):
			id, err = age.ParseHybridIdentity(line)
		case strings.HasPrefix(line, "AGE-SECRET-KEY-1"):
			id, err = age.ParseX25519Identity(line)
		case strings.HasPrefix(line, "AGE-PLUGIN-"):
			return nil, fmt.Errorf("line %d is an age plugin identity, which weir does not run", i+1)
		default:
			err = errors.New("unknown")
		}
		if err != nil {
			return nil, fmt.Errorf("line %d is not an age secret key", i+1)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, errors.New("no age secret key in it")
	}
	return ids, nil
}

// whyNoKeys says why nothing can be decrypted, or returns nil.
func (d *decryptor) whyNoKeys() error {
	switch {
	case d.keysFrom != "" && len(d.ids) == 0:
		return fmt.Errorf("%s holds no age key", d.keysFrom)
	case d.keysFrom != "":
		return nil
	case d.secret == "":
		return errors.New("spec.decryption.secretRef is not set: weir decrypts with the age keys of that Secret")
	case d.values == nil:
		return fmt.Errorf("the age keys of Secret '%s' are needed: %w", d.secret, errNoValues)
	case !d.loaded:
		return fmt.Errorf("the age keys of Secret '%s' were not read", d.secret)
	case len(d.ids) == 0:
		return fmt.Errorf("Secret '%s' holds no age key (an entry whose name ends in %s)", d.secret, ageKeyExt)
	}
	return nil
}

// decrypt decrypts a SOPS document read in format in and writes the
// plain document in format out. Its errors hold no secret material: the
// libraries' messages that may quote values are replaced.
func (d *decryptor) decrypt(data []byte, in, out formats.Format) (plain []byte, err error) {
	if err := d.whyNoKeys(); err != nil {
		return nil, err
	}
	defer func() {
		// SOPS has panicked on malformed input before; Flux recovers too.
		if r := recover(); r != nil {
			plain, err = nil, fmt.Errorf("SOPS failed on the %s document", formatNames[in])
		}
	}()
	stores := config.NewStoresConfig()
	tree, err := common.StoreForFormat(in, stores).LoadEncryptedFile(data)
	if err != nil {
		return nil, fmt.Errorf("it is not a valid SOPS-encrypted %s document: %w", formatNames[in], userError(err))
	}
	svcs := []keyservice.KeyServiceClient{keyservice.NewCustomLocalClient(ageKeyService{ids: d.ids})}
	key, err := tree.Metadata.GetDataKeyWithKeyServices(svcs, sops.DefaultDecryptionOrder)
	if err != nil {
		return nil, d.noKeyError(tree.Metadata)
	}
	if _, err := tree.Decrypt(key, aes.NewCipher()); err != nil {
		if strings.Contains(err.Error(), "does not match sops' data format") {
			return nil, errors.New("a value that should be encrypted is not in SOPS's ENC[...] form (was it added after encryption?)")
		}
		return nil, errors.New("its values cannot be decrypted with its data key (is the file damaged?)")
	}
	plain, err = common.StoreForFormat(out, stores).EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, fmt.Errorf("the decrypted data cannot be written as %s", formatNames[out])
	}
	return plain, nil
}

// noKeyError says which keys a document is encrypted for (public
// recipients only) when none of ours opens it.
func (d *decryptor) noKeyError(md sops.Metadata) error {
	var recipients, others []string
	for _, group := range md.KeyGroups {
		for _, k := range group {
			if ak, ok := k.(*sopsage.MasterKey); ok {
				recipients = append(recipients, ak.Recipient)
			} else if t := k.TypeToIdentifier(); !slices.Contains(others, t) {
				others = append(others, t)
			}
		}
	}
	if len(recipients) == 0 {
		if d.serviceAccount != "" {
			return fmt.Errorf("it is encrypted for %s keys only, and weir decrypts with age keys: spec.decryption.serviceAccountName %q would reach a cloud KMS, which weir does not do", strings.Join(others, ", "), d.serviceAccount)
		}
		return fmt.Errorf("it is encrypted for %s keys only, and weir decrypts with age keys", strings.Join(others, ", "))
	}
	from := fmt.Sprintf("Secret '%s'", d.secret)
	if d.keysFrom != "" {
		from = d.keysFrom
	}
	return fmt.Errorf("no age key in %s can decrypt it (it is encrypted for %s)", from, strings.Join(recipients, ", "))
}

// userError prefers SOPS's message written for users.
func userError(err error) error {
	var ue sops.UserError
	if errors.As(err, &ue) {
		return errors.New(ue.UserError())
	}
	return err
}

// ageKeyService is a SOPS key service that opens age-encrypted data keys
// with the given identities only. SOPS's own service would fall back to
// key files and environment variables of the process, and to PGP and cloud
// KMS: none of that is the Kustomization's to use.
type ageKeyService struct {
	keyservice.UnimplementedKeyServiceServer
	ids sopsage.ParsedIdentities
}

func (s ageKeyService) Decrypt(_ context.Context, req *keyservice.DecryptRequest) (*keyservice.DecryptResponse, error) {
	k, ok := req.GetKey().GetKeyType().(*keyservice.Key_AgeKey)
	if !ok {
		return nil, errors.New("only age keys are supported")
	}
	if len(s.ids) == 0 {
		// An age MasterKey without identities would look for them in the
		// environment.
		return nil, errors.New("no age identity")
	}
	mk := sopsage.MasterKey{Recipient: k.AgeKey.GetRecipient(), EncryptedKey: string(req.GetCiphertext())}
	s.ids.ApplyToMasterKey(&mk)
	plain, err := mk.Decrypt()
	if err != nil {
		return nil, err
	}
	return &keyservice.DecryptResponse{Plaintext: plain}, nil
}

func (ageKeyService) Encrypt(context.Context, *keyservice.EncryptRequest) (*keyservice.EncryptResponse, error) {
	return nil, errors.New("a render never encrypts")
}

// decryptSources decrypts, in memory, the SOPS-encrypted files that the
// kustomizations reachable from dir feed to secretGenerators (files, envs)
// and patches, as Flux does before the build. Files without a SOPS MAC
// are left alone.
func (d *decryptor) decryptSources(fs filesys.FileSystem, root, dir string) error {
	done := map[string]bool{}
	return walkKustomizations(fs, root, dir, func(kdir, _ string, k *kustypes.Kustomization) error {
		visit := func(ref string, format formats.Format) error {
			if looksRemote(ref) {
				return nil
			}
			p := filepath.Clean(ref)
			if !filepath.IsAbs(p) {
				p = filepath.Join(kdir, p)
			}
			if done[p] || !within(root, p) || !fs.Exists(p) || fs.IsDir(p) {
				return nil
			}
			data, err := fs.ReadFile(p)
			if err != nil || !bytes.Contains(data, marker(format)) {
				return nil // kustomize reports unreadable files
			}
			rel, _ := filepath.Rel(root, p)
			if len(data) > maxEncryptedFileSize {
				return fmt.Errorf("decrypting %s: the file is larger than %d MiB", filepath.ToSlash(rel), maxEncryptedFileSize>>20)
			}
			plain, err := d.decrypt(data, format, format)
			if err != nil {
				return fmt.Errorf("decrypting %s: %w", filepath.ToSlash(rel), err)
			}
			if format == formats.Yaml || format == formats.Json {
				// Other formats feed secretGenerators only, whose Secrets
				// Build records.
				recordDecryptedDocuments(d.secrets, data, plain)
			}
			done[p] = true
			return fs.WriteFile(p, plain)
		}
		for _, g := range k.SecretGenerator {
			for _, src := range g.FileSources {
				key, path := fileSource(src)
				if err := visit(path, formatForPath(key)); err != nil {
					return err
				}
			}
			envs := g.EnvSources
			if g.EnvSource != "" {
				envs = append(slices.Clone(envs), g.EnvSource)
			}
			for _, env := range envs {
				f := formatForPath(env)
				if f == formats.Binary {
					f = formats.Dotenv
				}
				if err := visit(env, f); err != nil {
					return err
				}
			}
		}
		for _, p := range k.Patches {
			if p.Path != "" {
				if err := visit(p.Path, formatForPath(p.Path)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// isEncrypted tells whether an object is a SOPS document (it has
// sops.mac).
func isEncrypted(res *resource.Resource) bool {
	f := res.Field("sops")
	if f.IsNilOrEmpty() {
		return false
	}
	mac := f.Value.Field("mac")
	return !mac.IsNilOrEmpty()
}

// isEncryptedSecret tells whether a core Secret is a SOPS document that was
// not decrypted and is not meant to be (no decrypt: disabled annotation):
// Flux refuses to apply such a Secret, and so does weir, one step earlier.
func isEncryptedSecret(res *resource.Resource) bool {
	return res.GetKind() == "Secret" && res.GetApiVersion() == "v1" && !res.Field("sops").IsNilOrEmpty() &&
		!strings.EqualFold(res.GetAnnotations()[decryptKey], kustomizev1.DisabledValue)
}

// encryptedSecretError says that a Secret is still encrypted and what to
// set for it to be decrypted; where names its file.
func encryptedSecretError(res *resource.Resource, where string, dec *kustomizev1.Decryption) error {
	why := "spec.decryption is not set"
	if dec != nil && dec.Provider != sopsProvider {
		why = fmt.Sprintf("spec.decryption.provider is '%s', not '%s'", dec.Provider, sopsProvider)
	}
	return fmt.Errorf("%s is SOPS encrypted and %s: configure decryption (provider: sops, secretRef: a Secret of age keys) for it to be reconciled, or annotate it %s: %s to apply it as it is",
		subject(res, where), why, decryptKey, kustomizev1.DisabledValue)
}

// subject names an object and its file: "Secret ns/db in apps/db.yaml",
// or the object alone when where is the object.
func subject(res *resource.Resource, where string) string {
	if d := describe(res); d != where {
		return d + " in " + where
	}
	return where
}

// decryptResource decrypts an object after the build, as Flux does: a
// whole SOPS document of any kind, or the SOPS-encrypted values of a
// Secret's data (from a generator fed an encrypted file under another
// name, say). where names the object's file for errors.
func (d *decryptor) decryptResource(res *resource.Resource, where string) error {
	if strings.EqualFold(res.GetAnnotations()[decryptKey], kustomizev1.DisabledValue) {
		return nil
	}
	if isEncrypted(res) {
		js, err := res.MarshalJSON()
		if err != nil {
			return err
		}
		plain, err := d.decrypt(js, formats.Json, formats.Json)
		if err != nil {
			return fmt.Errorf("decrypting %s: %w", where, err)
		}
		recordDecryptedDocuments(d.secrets, js, plain)
		return res.UnmarshalJSON(plain)
	}
	if res.GetKind() != "Secret" {
		return nil
	}
	data := res.GetDataMap()
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	changed := false
	for _, key := range keys {
		raw, err := base64.StdEncoding.DecodeString(data[key])
		if err != nil {
			continue // kustomize or the API server reports bad base64
		}
		in, ok := detectFormat(raw)
		if !ok {
			continue
		}
		plain, err := d.decrypt(raw, in, formatForPath(key))
		if err != nil {
			return fmt.Errorf("decrypting key '%s' of %s: %w", key, where, err)
		}
		data[key] = base64.StdEncoding.EncodeToString(plain)
		changed = true
	}
	if changed {
		res.SetDataMap(data)
	}
	return nil
}

// MaskSecrets replaces every value of every Secret's data and stringData
// with a mask ({"mask": "**SOPS**"} for docker config Secrets, which must
// stay JSON), and drops SOPS metadata from every object.
func MaskSecrets(objects []*unstructured.Unstructured) error {
	dockerMask, err := json.Marshal(map[string]string{"mask": mask})
	if err != nil {
		return err
	}
	for _, u := range objects {
		unstructured.RemoveNestedField(u.Object, "sops")
		if u.GetKind() != "Secret" || u.GetAPIVersion() != "v1" {
			continue
		}
		m := mask
		if t, _, _ := unstructured.NestedString(u.Object, "type"); t == "kubernetes.io/dockerconfigjson" {
			m = string(dockerMask)
		}
		for field, value := range map[string]string{"data": base64.StdEncoding.EncodeToString([]byte(m)), "stringData": m} {
			entries, ok, err := unstructured.NestedMap(u.Object, field)
			if err != nil {
				return fmt.Errorf("Secret %s/%s: %s is not a map", u.GetNamespace(), u.GetName(), field)
			}
			if !ok {
				continue
			}
			for k := range entries {
				entries[k] = value
			}
			if err := unstructured.SetNestedMap(u.Object, entries, field); err != nil {
				return fmt.Errorf("Secret %s/%s: %w", u.GetNamespace(), u.GetName(), err)
			}
		}
	}
	return nil
}
