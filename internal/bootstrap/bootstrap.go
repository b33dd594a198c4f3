// Package bootstrap makes a cluster sync itself from a Git repository with
// weir, as `flux bootstrap git` and Flux Operator's bootstrap do: the
// flux-system namespace, the deploy key Secret (with the Git server's
// host key), the sops-age Secret, weir's installation, and a FluxInstance
// (or a plain GitRepository and Kustomization) whose sync it waits for.
// Every step is applied so that a second run with the same options
// changes nothing and says so.
package bootstrap

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/instance"
)

// FieldManager is the field manager of what bootstrap applies.
const FieldManager = "weir-bootstrap"

// Options say what to bootstrap.
type Options struct {
	// URL of the Git repository: ssh://, git@host:path, or https://.
	URL string
	// Branch to sync.
	Branch string
	// Path in the repository of the cluster's sync root.
	Path string
	// SecretName is the Secret holding the Git credentials; "" means
	// flux-system, as flux bootstrap names it.
	SecretName string
	// PrivateKeyFile is an SSH private key (the deploy key) to store.
	PrivateKeyFile string
	// GenerateKey makes an ed25519 deploy key when the Secret holds none.
	GenerateKey bool
	// Username and Password authenticate over HTTPS.
	Username, Password string
	// SOPSAgeKeyFile is an age key file stored in the Secret sops-age.
	SOPSAgeKeyFile string
	// NoInstance applies a GitRepository and a Kustomization instead of a
	// FluxInstance.
	NoInstance bool
	// Interval of the source; 0 means one minute.
	Interval time.Duration
	// Install says how weir runs in the cluster; its Namespace is the
	// bootstrap's namespace.
	Install install.Options
	// Timeout bounds the waits (Deployment Available, first sync).
	Timeout time.Duration
}

func (o Options) namespace() string {
	if o.Install.Namespace == "" {
		return install.Namespace
	}
	return o.Install.Namespace
}

func (o Options) secretName() string {
	if o.SecretName == "" {
		return "flux-system"
	}
	return o.SecretName
}

// Progress receives one line per step: "► ..." when it starts, "✔ ..."
// when it is done.
type Progress func(format string, args ...any)

// Result sums up a run.
type Result struct {
	// Changed lists what the run created, updated or deleted.
	Changed []string
	// PublicKey is the deploy key's public half, for SSH URLs.
	PublicKey string
	// Revision is the revision the sync applied.
	Revision string
}

// Run bootstraps the cluster c and waits for the first sync.
func Run(ctx context.Context, c client.Client, o Options, say Progress) (*Result, error) {
	if o.URL == "" || o.Branch == "" || o.Path == "" {
		return nil, errors.New("--url, --branch and --path are required")
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	res := &Result{}
	ns := o.namespace()

	say("► installing weir's CRDs and the %s namespace", install.Namespace)
	fi := o.instanceObject()
	installOpts := o.Install
	installOpts.Namespace = ns
	if !o.NoInstance {
		// What the FluxInstance will make of the installation, so that
		// the instance and a second bootstrap agree.
		installOpts = instance.ComponentOptions(fi, installOpts)
	}
	changed, err := install.InstallAll(ctx, c, nil, 0)
	res.Changed = append(res.Changed, changed...)
	if err != nil {
		return res, err
	}
	if ns != install.Namespace {
		ch, err := apply(ctx, c, &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil {
			return res, err
		}
		changed = append(changed, ch...)
		res.Changed = append(res.Changed, ch...)
	}
	say("%s", done("CRDs", changed))

	secret, pub, err := o.gitSecret(ctx, c, say)
	if err != nil {
		return res, err
	}
	res.PublicKey = pub
	var objs []client.Object
	if secret != nil {
		objs = append(objs, secret)
	}
	if o.SOPSAgeKeyFile != "" {
		key, err := os.ReadFile(o.SOPSAgeKeyFile)
		if err != nil {
			return res, fmt.Errorf("reading the age key: %w", err)
		}
		if !strings.Contains(string(key), "AGE-SECRET-KEY-") {
			return res, fmt.Errorf("%s holds no age secret key (AGE-SECRET-KEY-...)", o.SOPSAgeKeyFile)
		}
		objs = append(objs, &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-age"},
			Data:       map[string][]byte{"age.agekey": key},
		})
	}
	for _, obj := range objs {
		say("► applying Secret %s/%s", ns, obj.GetName())
		ch, err := apply(ctx, c, obj)
		if err != nil {
			return res, err
		}
		res.Changed = append(res.Changed, ch...)
		say("%s", done("Secret "+ns+"/"+obj.GetName(), ch))
	}
	if pub != "" {
		say("✔ deploy key: %s", strings.TrimSpace(pub))
		say("  add it to the repository's deploy keys (read access is enough)")
	}

	say("► installing weir (%s) in %s", installOpts.ImageRef(), ns)
	say("◎ waiting for the Deployment to be Available")
	changed, err = install.InstallAll(ctx, c, &installOpts, o.Timeout)
	res.Changed = append(res.Changed, changed...)
	if err != nil {
		return res, err
	}
	say("%s", done("weir", changed))

	var sync []client.Object
	if o.NoInstance {
		objs, err := instance.SyncObjects(fi)
		if err != nil {
			return res, err
		}
		for _, u := range objs {
			sync = append(sync, u)
		}
	} else {
		sync = append(sync, fi)
	}
	for _, obj := range sync {
		kind := obj.GetObjectKind().GroupVersionKind().Kind
		say("► applying %s %s/%s", kind, ns, obj.GetName())
		ch, err := apply(ctx, c, obj)
		if err != nil {
			return res, err
		}
		res.Changed = append(res.Changed, ch...)
		say("%s", done(kind+" "+ns+"/"+obj.GetName(), ch))
	}

	say("◎ waiting for Kustomization %s/%s to sync", ns, ns)
	rev, err := waitSynced(ctx, c, client.ObjectKey{Namespace: ns, Name: ns}, o.Timeout)
	if err != nil && pub != "" {
		err = fmt.Errorf("%w (is the deploy key added to the repository? %s)", err, strings.TrimSpace(pub))
	}
	if err != nil {
		return res, err
	}
	res.Revision = rev
	say("✔ Kustomization %s/%s applied revision %s", ns, ns, rev)
	return res, nil
}

// done is the line that ends a step.
func done(what string, changed []string) string {
	if len(changed) == 0 {
		return "✔ " + what + " unchanged"
	}
	if len(changed) == 1 {
		return "✔ " + changed[0] + " applied"
	}
	return fmt.Sprintf("✔ %s: %d objects applied", what, len(changed))
}

// instanceObject is the FluxInstance the bootstrap applies.
func (o Options) instanceObject() *v1.FluxInstance {
	interval := o.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	fi := &v1.FluxInstance{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: v1.FluxInstanceKind},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.namespace(), Name: v1.InstanceName},
		Spec: v1.FluxInstanceSpec{
			Distribution: v1.Distribution{Version: "2.x", Registry: "ghcr.io/fluxcd"},
			Cluster: &v1.Cluster{
				NetworkPolicy:               !o.Install.NoNetworkPolicy,
				Multitenant:                 o.Install.LeastPrivilege,
				TenantDefaultServiceAccount: o.Install.DefaultServiceAccount,
				Domain:                      "cluster.local",
				Type:                        "kubernetes",
			},
			Sync: &v1.Sync{
				Kind:     "GitRepository",
				URL:      o.URL,
				Ref:      "refs/heads/" + o.Branch,
				Path:     o.Path,
				Interval: &metav1.Duration{Duration: interval},
			},
		},
	}
	if o.hasCredentials() {
		fi.Spec.Sync.PullSecret = o.secretName()
	}
	return fi
}

func (o Options) hasCredentials() bool {
	return isSSH(o.URL) || o.Password != ""
}

// gitSecret builds the Secret holding the Git credentials: for SSH, the
// deploy key (from --private-key-file, else the one the Secret holds,
// else a new one with --generate-key) and the server's host key; for
// HTTPS, the username and password. It returns nil when the repository
// needs none.
func (o Options) gitSecret(ctx context.Context, c client.Client, say Progress) (*corev1.Secret, string, error) {
	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.namespace(), Name: o.secretName()},
		Data:       map[string][]byte{},
	}
	if !isSSH(o.URL) {
		if o.Password == "" {
			return nil, "", nil
		}
		s.Data["username"] = []byte(o.Username)
		s.Data["password"] = []byte(o.Password)
		return s, "", nil
	}
	addr, err := sshAddress(o.URL)
	if err != nil {
		return nil, "", err
	}
	say("► reading the SSH host key of %s", addr)
	hosts, err := scanHostKey(ctx, addr)
	if err != nil {
		return nil, "", err
	}
	say("✔ %s", strings.TrimSpace(hostKeyType(hosts)))
	s.Data["known_hosts"] = hosts

	var identity []byte
	switch {
	case o.PrivateKeyFile != "":
		if identity, err = os.ReadFile(o.PrivateKeyFile); err != nil {
			return nil, "", fmt.Errorf("reading the private key: %w", err)
		}
	default:
		live := &corev1.Secret{}
		err := c.Get(ctx, client.ObjectKeyFromObject(s), live)
		switch {
		case err == nil && len(live.Data["identity"]) > 0:
			identity = live.Data["identity"]
		case err != nil && !apierrors.IsNotFound(err):
			return nil, "", fmt.Errorf("reading Secret %s/%s: %w", s.Namespace, s.Name, err)
		case o.GenerateKey:
			if identity, err = newDeployKey(); err != nil {
				return nil, "", err
			}
		default:
			return nil, "", fmt.Errorf("an SSH URL needs a deploy key: pass --private-key-file, or --generate-key to make one (Secret %s/%s holds none)", s.Namespace, s.Name)
		}
	}
	signer, err := ssh.ParsePrivateKey(identity)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, "", errors.New("the private key is protected by a passphrase: give a key without one (the controller cannot type it)")
		}
		return nil, "", fmt.Errorf("reading the private key: %w", err)
	}
	pub := string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	s.Data["identity"] = identity
	s.Data["identity.pub"] = []byte(pub)
	return s, pub, nil
}

// hostKeyType names the host and key type of a known_hosts line.
func hostKeyType(line []byte) string {
	f := strings.Fields(string(line))
	if len(f) < 2 {
		return string(line)
	}
	return "host key " + f[1] + " of " + f[0]
}

// newDeployKey makes an ed25519 key in OpenSSH PEM form.
func newDeployKey() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a deploy key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "weir deploy key")
	if err != nil {
		return nil, fmt.Errorf("encoding the deploy key: %w", err)
	}
	return pem.EncodeToMemory(block), nil
}

// apply server-side applies obj and tells whether it changed.
func apply(ctx context.Context, c client.Client, obj client.Object) ([]string, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s: %w", obj.GetName(), err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return install.ApplyTracked(ctx, c, FieldManager, []*unstructured.Unstructured{u})
}

// waitSynced waits until the Kustomization at key is Ready for its current
// generation and returns its applied revision; a failure other than
// waiting for its source ends the wait with its message.
func waitSynced(ctx context.Context, c client.Client, key client.ObjectKey, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "not created yet"
	for {
		src := &sourcev1.GitRepository{}
		if err := c.Get(ctx, key, src); err == nil {
			ready := conditions.Get(src, meta.ReadyCondition)
			if ready != nil && ready.Status == metav1.ConditionFalse && ready.ObservedGeneration == src.Generation {
				return "", fmt.Errorf("GitRepository %s failed: %s", key, ready.Message)
			}
		}
		ks := &kustomizev1.Kustomization{}
		if err := c.Get(ctx, key, ks); err == nil {
			ready := conditions.Get(ks, meta.ReadyCondition)
			switch {
			case ready == nil || ready.ObservedGeneration < ks.Generation:
				last = "not reconciled yet"
			case ready.Status == metav1.ConditionTrue:
				return ks.Status.LastAppliedRevision, nil
			case ready.Status == metav1.ConditionFalse && ready.Reason != meta.ArtifactFailedReason && ready.Reason != meta.DependencyNotReadyReason:
				return "", fmt.Errorf("Kustomization %s failed: %s", key, ready.Message)
			default:
				last = ready.Message
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("Kustomization %s did not sync within %s: %s (see `weir get sources git -n %s` and `weir events -n %s`)", key, timeout, last, key.Namespace, key.Namespace)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
