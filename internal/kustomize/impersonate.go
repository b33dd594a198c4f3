package kustomize

import (
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/apply"
)

// applierFor returns the applier that acts as the Kustomization's service
// account (spec.serviceAccountName, else the controller's default), so
// that a tenant can apply no more than its account may; without either it
// is the controller's own.
func (r *Reconciler) applierFor(obj *kustomizev1.Kustomization) (*apply.Applier, error) {
	sa := obj.Spec.ServiceAccountName
	if sa == "" {
		sa = r.DefaultServiceAccount
	}
	if sa == "" {
		return r.applier, nil
	}
	user := fmt.Sprintf("system:serviceaccount:%s:%s", obj.Namespace, sa)
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.impersonated[user]; ok {
		return a, nil
	}
	cfg := rest.CopyConfig(r.config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: r.Scheme(), Mapper: r.RESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("creating a client for service account %s/%s: %w", obj.Namespace, sa, err)
	}
	if r.impersonated == nil {
		r.impersonated = map[string]*apply.Applier{}
	}
	a := apply.New(c)
	r.impersonated[user] = a
	return a, nil
}
