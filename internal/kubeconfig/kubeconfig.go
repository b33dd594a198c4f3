package kubeconfig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	runtimeclient "github.com/fluxcd/pkg/runtime/client"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys looked up in the Secret when spec.kubeConfig.secretRef.key is
// empty, in this order, as Flux's.
const (
	DefaultKey    = "value"
	DefaultKeyExt = "value.yaml"
)

// ErrUnsupported marks a kubeConfig that no retry will make usable (a
// workload identity): only a spec change helps.
var ErrUnsupported = errors.New("unsupported kubeConfig")

// Remote is the cluster a kubeConfig reference names.
type Remote struct {
	// Config reaches the cluster with the kubeconfig's credentials, as
	// Flux sanitises it; it impersonates no one.
	Config *rest.Config
	// Digest identifies the kubeconfig's content: a changed Secret gives
	// another digest, and so another connection.
	Digest string
	// Secret is "namespace/name" of the Secret the kubeconfig was read from.
	Secret string
}

// Host is the API server's address, for messages.
func (r *Remote) Host() string { return r.Config.Host }

// Load reads the kubeconfig that ref names from a Secret in namespace and
// checks it. Secret values never appear in its errors.
func Load(ctx context.Context, c client.Reader, namespace string, ref *meta.KubeConfigReference) (*Remote, error) {
	if ref.SecretRef == nil {
		if ref.ConfigMapRef != nil {
			return nil, workloadIdentity(ctx, c, namespace, ref.ConfigMapRef.Name)
		}
		return nil, fmt.Errorf("%w: invalid .spec.kubeConfig, neither .spec.kubeConfig.configMapRef nor .spec.kubeConfig.secretRef is set", ErrUnsupported)
	}
	name := namespace + "/" + ref.SecretRef.Name
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.SecretRef.Name}, secret); err != nil {
		return nil, fmt.Errorf("unable to read KubeConfig secret '%s' error: %w", name, err)
	}
	var data []byte
	switch key := ref.SecretRef.Key; {
	case key != "":
		if data = secret.Data[key]; data == nil {
			return nil, fmt.Errorf("KubeConfig secret '%s' does not contain a '%s' key with a kubeconfig", name, key)
		}
	case secret.Data[DefaultKey] != nil:
		data = secret.Data[DefaultKey]
	case secret.Data[DefaultKeyExt] != nil:
		data = secret.Data[DefaultKeyExt]
	default:
		return nil, fmt.Errorf("KubeConfig secret '%s' does not contain a '%s' or '%s' key with a kubeconfig", name, DefaultKey, DefaultKeyExt)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("invalid KubeConfig in secret '%s': %w", name, err)
	}
	sum := sha256.Sum256(data)
	return &Remote{Config: cfg, Digest: hex.EncodeToString(sum[:]), Secret: name}, nil
}

// Parse builds the REST config of a kubeconfig's current context. It
// refuses what Flux's controllers drop or refuse by default: references to
// files (Flux refuses them), exec and auth-provider plugins, and
// insecure-skip-tls-verify (Flux drops them, and the connection then fails
// for want of credentials or trust, with a message that does not say why).
// The errors name the kubeconfig's entries, never its credentials.
func Parse(data []byte) (*rest.Config, error) {
	kc, err := clientcmd.Load(data)
	if err != nil {
		return nil, err
	}
	if err := runtimeclient.ValidateKubeConfig(kc); err != nil {
		return nil, err
	}
	if cur := kc.Contexts[kc.CurrentContext]; cur != nil {
		if err := checkUser(cur.AuthInfo, kc.AuthInfos[cur.AuthInfo]); err != nil {
			return nil, err
		}
		if c := kc.Clusters[cur.Cluster]; c != nil && c.InsecureSkipTLSVerify {
			return nil, fmt.Errorf("cluster '%s' sets insecure-skip-tls-verify: weir verifies the API server's certificate "+
				"(as Flux with --insecure-kubeconfig-tls off, its default); give its CA in certificate-authority-data instead", cur.Cluster)
		}
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*kc, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	if cfg.Host == "" {
		return nil, errors.New("the current context names no server")
	}
	return cfg, nil
}

// checkUser refuses credentials that a program or plugin would make.
func checkUser(name string, u *clientcmdapi.AuthInfo) error {
	switch {
	case u == nil:
		return nil
	case u.Exec != nil:
		return fmt.Errorf("user '%s' runs an exec plugin (%q) for its credentials: weir runs no program a kubeconfig names "+
			"(as Flux with --insecure-kubeconfig-exec off, its default); embed a token or a client certificate instead", name, u.Exec.Command)
	case u.AuthProvider != nil:
		return fmt.Errorf("user '%s' gets its credentials from the auth-provider plugin %q, which weir does not run "+
			"(nor does Flux); embed a token or a client certificate instead", name, u.AuthProvider.Name)
	}
	return nil
}

// connect sanitises a parsed config as Flux does (only inline credentials,
// TLS data and the server are kept; a 30 s timeout; no rate limit when the
// API server has priority and fairness) and names weir in requests. A
// server that does not answer the priority-and-fairness probe within a
// few seconds keeps the home connection's rate limit.
func connect(ctx context.Context, in *rest.Config, home *rest.Config, userAgent string) *rest.Config {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out := runtimeclient.KubeConfig(ctx, in, runtimeclient.KubeConfigOptions{UserAgent: userAgent})
	if out.QPS >= 0 && home != nil {
		out.QPS, out.Burst = home.QPS, home.Burst
	}
	return out
}

// Sanitised is the REST config the controllers reach the cluster with,
// for the tools that read it as they do (`weir diff ks`). It acts as the
// kubeconfig's own identity.
func (r *Remote) Sanitised(ctx context.Context, userAgent string) *rest.Config {
	return connect(ctx, r.Config, nil, userAgent)
}

// Explain returns err as it is when the remote cluster answers, and else an
// error that says the cluster cannot be reached, with err after it: a
// failed step in a remote cluster is told apart from one the cluster
// refused.
func (r *Remote) Explain(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	probe := r.reachable(ctx)
	if probe == nil {
		return err
	}
	return &UnreachableError{Host: r.Host(), Secret: r.Secret, Probe: probe, Err: err}
}

// reachable asks the API server for its version, with the kubeconfig's
// credentials: any HTTP answer, even a refusal, means it is reachable.
func (r *Remote) reachable(ctx context.Context) error {
	cfg := rest.CopyConfig(r.Config)
	cfg.Timeout = 5 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = dc.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	var status apierrors.APIStatus
	if err == nil || errors.As(err, &status) {
		return nil
	}
	return err
}

// UnreachableError is a step that failed because the remote cluster does
// not answer.
type UnreachableError struct {
	Host, Secret string
	// Probe is why the cluster does not answer.
	Probe error
	// Err is the step's own error.
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("the remote cluster %s of KubeConfig secret '%s' cannot be reached (%v); the reconcile is retried: %v",
		e.Host, e.Secret, e.Probe, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// workloadIdentity is the error for a configMapRef: it names the provider
// the ConfigMap asks for, when it can be read.
func workloadIdentity(ctx context.Context, c client.Reader, namespace, name string) error {
	provider := ""
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cm); err == nil {
		provider = cm.Data[meta.KubeConfigKeyProvider]
	}
	what := "a cloud provider's workload identity"
	switch provider {
	case "":
	case "generic":
		what = "the generic provider (a ServiceAccount token exchanged with the remote cluster)"
	default:
		what = fmt.Sprintf("the workload identity of provider '%s'", provider)
	}
	return fmt.Errorf("%w: .spec.kubeConfig.configMapRef '%s/%s' asks for %s: weir reaches no cloud identity service and mints no token for another cluster, so the remote cluster was not touched; "+
		"use .spec.kubeConfig.secretRef with a kubeconfig that embeds its credentials", ErrUnsupported, namespace, name, what)
}
