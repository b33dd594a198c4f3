package kustomize

import (
	"context"
	"errors"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/weirhq/weir/internal/apply"
	"github.com/weirhq/weir/internal/kubeconfig"
)

// target is the cluster a Kustomization's objects go to: this one, or the
// remote cluster spec.kubeConfig names; in either, reached as the
// Kustomization's service account (spec.serviceAccountName, else the
// controller's default), so that a tenant can apply no more than its
// account may. Only the Kustomization's own status, events and inventory
// ConfigMaps stay in this cluster.
type target struct {
	applier *apply.Applier
	// config and reader find the objects that carry the ownership labels
	// (a deletion without an inventory), straight from the API server.
	config *rest.Config
	reader client.Reader
	// remote is the cluster spec.kubeConfig names; nil for this one.
	remote *kubeconfig.Remote
}

// connection is what is kept per remote cluster and identity.
type connection struct {
	applier *apply.Applier
	client  client.Client
	config  *rest.Config
}

// serviceAccount is the user the Kustomization acts as, "" for the
// controller's own identity (or the kubeconfig's, in a remote cluster).
func (r *Reconciler) serviceAccount(obj *kustomizev1.Kustomization) string {
	sa := obj.Spec.ServiceAccountName
	if sa == "" {
		sa = r.DefaultServiceAccount
	}
	if sa == "" {
		return ""
	}
	return fmt.Sprintf("system:serviceaccount:%s:%s", obj.Namespace, sa)
}

// targetFor returns the cluster obj applies to. A kubeConfig that cannot
// be read or used is an error that names the Secret, never its content.
func (r *Reconciler) targetFor(ctx context.Context, obj *kustomizev1.Kustomization) (*target, error) {
	user := r.serviceAccount(obj)
	if obj.Spec.KubeConfig == nil {
		a, err := r.homeApplier(user)
		if err != nil {
			return nil, err
		}
		return &target{applier: a, config: r.config, reader: r.apiReader}, nil
	}
	remote, err := kubeconfig.Load(ctx, r.Client, obj.Namespace, obj.Spec.KubeConfig)
	if err != nil {
		return nil, err
	}
	c, err := r.remotes.Get(ctx, client.ObjectKeyFromObject(obj), remote, user, r.connect)
	if err != nil {
		return nil, fmt.Errorf("connecting to the remote cluster %s of KubeConfig secret '%s': %w", remote.Host(), remote.Secret, err)
	}
	return &target{applier: c.applier, config: c.config, reader: c.client, remote: remote}, nil
}

// connect makes a client of a remote cluster. Its REST mapper discovers
// the cluster's kinds on first use, not here.
func (r *Reconciler) connect(cfg *rest.Config) (*connection, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: r.Scheme(), Mapper: mapper, HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	return &connection{applier: apply.New(c), client: c, config: cfg}, nil
}

// homeApplier returns the applier of this cluster acting as user, or as
// the controller when user is empty.
func (r *Reconciler) homeApplier(user string) (*apply.Applier, error) {
	if user == "" {
		return r.applier, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.impersonated[user]; ok {
		return a, nil
	}
	cfg := rest.CopyConfig(r.config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: r.Scheme(), Mapper: r.RESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("creating a client for %s: %w", user, err)
	}
	if r.impersonated == nil {
		r.impersonated = map[string]*apply.Applier{}
	}
	a := apply.New(c)
	r.impersonated[user] = a
	return a, nil
}

// explain turns the error of a step in a remote cluster that does not
// answer into one that says so, and drops the connection so that the next
// attempt starts afresh. Other errors are returned as they are.
func (t *target) explain(ctx context.Context, r *Reconciler, obj *kustomizev1.Kustomization, err error) error {
	if t.remote == nil || err == nil {
		return err
	}
	err = t.remote.Explain(ctx, err)
	var ue *kubeconfig.UnreachableError
	if errors.As(err, &ue) {
		r.remotes.Forget(client.ObjectKeyFromObject(obj))
	}
	return err
}

// clusterOf identifies the cluster a Kustomization applies to, as its spec
// names it: two Kustomizations share objects only in the same cluster.
func clusterOf(k *kustomizev1.Kustomization) string {
	kc := k.Spec.KubeConfig
	switch {
	case kc == nil:
		return ""
	case kc.SecretRef != nil:
		return "secret/" + k.Namespace + "/" + kc.SecretRef.Name + "/" + kc.SecretRef.Key
	case kc.ConfigMapRef != nil:
		return "configmap/" + k.Namespace + "/" + kc.ConfigMapRef.Name
	}
	return "?"
}

// kubeConfigError is the step error of a kubeConfig that cannot be used:
// a workload identity stalls (only a spec change helps); anything else (a
// missing Secret, a kubeconfig to fix) is retried, since a Secret's change
// queues nothing.
func kubeConfigError(err error) error {
	if errors.Is(err, kubeconfig.ErrUnsupported) {
		return &waitError{reason: meta.ReconciliationFailedReason, stalled: true, err: err}
	}
	return &stepError{reason: meta.ReconciliationFailedReason, err: err}
}
