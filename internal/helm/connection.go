package helm

import (
	"context"
	"errors"
	"fmt"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/kubeconfig"
)

// connection reaches the cluster a HelmRelease installs in: this one, or
// the remote cluster spec.kubeConfig names; in either, acting as the
// HelmRelease's service account (spec.serviceAccountName, else the
// default one; the controller's own identity, or the kubeconfig's, when
// neither is set). The Helm storage, the release's objects, its tests,
// health checks and drift detection all go there; the HelmRelease's
// status and events stay in this cluster.
type connection struct {
	config *rest.Config
	// shared is the discovery and client shared by every release acting
	// as the same identity in the same cluster.
	shared *sharedDiscovery
	// remote is the cluster spec.kubeConfig names; nil for this one.
	remote *kubeconfig.Remote
}

// serviceAccount is the user the HelmRelease acts as, "" for none.
func (r *Reconciler) serviceAccount(hr *helmv2.HelmRelease) string {
	sa := hr.Spec.ServiceAccountName
	if sa == "" {
		sa = r.DefaultServiceAccount
	}
	if sa == "" {
		return ""
	}
	return "system:serviceaccount:" + hr.Namespace + ":" + sa
}

// connect returns the HelmRelease's connection. A kubeConfig that cannot
// be read or used is an error that names the Secret, never its content.
func (r *Reconciler) connect(ctx context.Context, hr *helmv2.HelmRelease) (*connection, error) {
	user := r.serviceAccount(hr)
	kc := hr.Spec.KubeConfig
	if kc == nil {
		return r.home(user), nil
	}
	if kc.SecretRef != nil && kc.ConfigMapRef != nil {
		return nil, fmt.Errorf("%w: exactly one of .spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be set", kubeconfig.ErrUnsupported)
	}
	remote, err := kubeconfig.Load(ctx, r.Client, hr.Namespace, kc)
	if err != nil {
		return nil, err
	}
	c, err := r.remotes.Get(ctx, client.ObjectKeyFromObject(hr), remote, user, func(cfg *rest.Config) (*connection, error) {
		return &connection{config: cfg, shared: &sharedDiscovery{}}, nil
	})
	if err != nil {
		return nil, err
	}
	return &connection{config: c.config, shared: c.shared, remote: remote}, nil
}

// home is the connection to this cluster acting as user.
func (r *Reconciler) home(user string) *connection {
	cfg := rest.CopyConfig(r.config)
	if user != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.discovery == nil {
		r.discovery = map[string]*sharedDiscovery{}
	}
	shared := r.discovery[user]
	if shared == nil {
		shared = &sharedDiscovery{}
		r.discovery[user] = shared
	}
	return &connection{config: cfg, shared: shared}
}

// explain rewrites the error of a step in a remote cluster that does not
// answer so that it says so, keeping the step's reason, and drops the
// connection so that the next attempt starts afresh.
func (c *connection) explain(ctx context.Context, r *Reconciler, hr *helmv2.HelmRelease, err error) error {
	if c.remote == nil || err == nil {
		return err
	}
	var se *stepError
	if !errors.As(err, &se) {
		se = &stepError{reason: "RESTClientError", err: err}
	}
	explained := c.remote.Explain(ctx, se.err)
	var ue *kubeconfig.UnreachableError
	if !errors.As(explained, &ue) {
		return err
	}
	r.remotes.Forget(client.ObjectKeyFromObject(hr))
	out := *se
	out.err = explained
	return &out
}

// kubeConfigError is the step error of a kubeConfig that cannot be used,
// with helm-controller's reason: a workload identity stalls (only a spec
// change helps); anything else (a missing Secret, a kubeconfig to fix) is
// retried, since a Secret's change queues nothing.
func kubeConfigError(err error) error {
	return &stepError{reason: "RESTClientError", stalled: errors.Is(err, kubeconfig.ErrUnsupported), err: err}
}

// uninstallOnDelete uninstalls the release of a deleted HelmRelease. When
// its remote cluster cannot be named any more (the kubeConfig Secret is
// gone) or never could be, the release there is left in place with a
// Warning event, as helm-controller does, rather than holding the
// deletion for good.
func (r *Reconciler) uninstallOnDelete(ctx context.Context, hr *helmv2.HelmRelease) error {
	conn, err := r.connect(ctx, hr)
	if err != nil {
		if hr.Spec.KubeConfig != nil && (apierrors.IsNotFound(err) || errors.Is(err, kubeconfig.ErrUnsupported) || hr.Status.StorageNamespace == "") {
			r.event(hr, corev1.EventTypeWarning, helmv2.UninstallFailedReason,
				fmt.Sprintf("the release in the remote cluster was left in place: %s", err))
			return nil
		}
		return err
	}
	cfg, err := r.actionConfig(hr, conn)
	if err != nil {
		return err
	}
	rel := &releaser{r: r, hr: hr, cfg: cfg}
	return conn.explain(ctx, r, hr, rel.uninstallOnDelete(ctx))
}
