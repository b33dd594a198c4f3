package helm

import (
	"fmt"
	"sync"

	"helm.sh/helm/v4/pkg/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi/cached"
	kubectlopenapi "k8s.io/kubectl/pkg/util/openapi"
	"k8s.io/kubectl/pkg/validation"
)

// validatingFactory is the Helm SDK's connection to the cluster with the
// validation of the objects it builds shared by every release of one
// identity.
//
// Before it creates or updates an object, the Helm SDK asks whether the
// API server validates fields itself (the fieldValidation parameter of
// Kubernetes 1.27 and later); only when it does not are the objects
// checked on the client. kubectl answers by parsing the OpenAPI v3
// document of the object's group and version, and caches the answer in
// the validator it makes for each call: for a controller that installs
// releases one after another, that was 35 MB of allocations a release
// and seven tenths of everything helm-controller's work allocated. Made
// once per identity, the answer is kept for the process.
type validatingFactory struct {
	kube.Factory
	shared *sharedDiscovery
}

// Validator returns the identity's validator for directive, made once.
func (f validatingFactory) Validator(directive string) (validation.Schema, error) {
	if directive == metav1.FieldValidationIgnore {
		return validation.NullSchema{}, nil
	}
	f.shared.validatorMu.Lock()
	defer f.shared.validatorMu.Unlock()
	if s, ok := f.shared.validators[directive]; ok {
		return s, nil
	}
	s, err := f.newValidator(directive)
	if err != nil {
		return nil, err
	}
	if f.shared.validators == nil {
		f.shared.validators = map[string]validation.Schema{}
	}
	f.shared.validators[directive] = s
	return s, nil
}

// newValidator makes the validator kubectl makes (client-side schema
// and duplicate-key checks, used only when the server does not validate
// fields), with the server's support remembered per kind.
func (f validatingFactory) newValidator(directive string) (validation.Schema, error) {
	full, ok := f.Factory.(interface {
		kubectlopenapi.OpenAPIResourcesGetter
		ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error)
	})
	if !ok {
		return nil, fmt.Errorf("connecting the Helm SDK to the cluster: unexpected factory %T", f.Factory)
	}
	dc, err := full.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	dyn, err := f.DynamicClient()
	if err != nil {
		return nil, err
	}
	schemaCheck := validation.ConjunctiveSchema{validation.NewSchemaValidation(full), validation.NoDoubleKeySchema{}}
	param := resource.QueryParamFieldValidation
	primary := &supportCache{next: resource.NewQueryParamVerifierV3(dyn, cached.NewClient(dc.OpenAPIV3()), param)}
	secondary := resource.NewQueryParamVerifier(dyn, dc, param)
	return validation.NewParamVerifyingSchema(schemaCheck, resource.NewFallbackQueryParamVerifier(primary, secondary), directive), nil
}

// supportCache remembers the kinds whose API the server validates
// fields for. Unlike kubectl's cache it keeps no other answer: a kind
// not served yet (a custom resource whose CRD the same release
// installs), or an error, is asked again the next time.
type supportCache struct {
	next      resource.Verifier
	mu        sync.RWMutex
	supported map[schema.GroupVersionKind]bool
}

// HasSupport implements resource.Verifier.
func (c *supportCache) HasSupport(gvk schema.GroupVersionKind) error {
	c.mu.RLock()
	ok := c.supported[gvk]
	c.mu.RUnlock()
	if ok {
		return nil
	}
	if err := c.next.HasSupport(gvk); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.supported == nil {
		c.supported = map[schema.GroupVersionKind]bool{}
	}
	c.supported[gvk] = true
	return nil
}
