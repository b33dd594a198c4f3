package apply

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldManager is the server-side apply field manager, the same as Flux's
// kustomize-controller, so that fields Flux owned stay owned after a move.
const FieldManager = "kustomize-controller"

// LabelGroup prefixes the ownership labels (<group>/name, <group>/namespace).
const LabelGroup = "kustomize.toolkit.fluxcd.io"

// Owner names the object (a Kustomization) that owns what is applied.
type Owner struct{ Name, Namespace string }

// Options tune one apply.
type Options struct {
	// Force recreates objects whose immutable fields changed.
	Force bool
	// Timeout bounds waiting for CRDs and Namespaces between stages.
	Timeout time.Duration
	// Ignore are the Kustomization's spec.ignore rules: the JSON pointers
	// they name, on the objects they select, are left out of the apply of
	// an object that exists, so that another actor owns them.
	Ignore []kustomizev1.IgnoreRule
}

// IgnoreRules turns spec.ignore into the rules fluxcd/pkg/ssa applies,
// as kustomize-controller does.
func IgnoreRules(rules []kustomizev1.IgnoreRule) []jsondiff.IgnoreRule {
	if len(rules) == 0 {
		return nil
	}
	out := make([]jsondiff.IgnoreRule, len(rules))
	for i, r := range rules {
		out[i] = jsondiff.IgnoreRule{Paths: r.Paths}
		if t := r.Target; t != nil {
			out[i].Selector = &jsondiff.Selector{
				Group: t.Group, Version: t.Version, Kind: t.Kind, Name: t.Name, Namespace: t.Namespace,
				AnnotationSelector: t.AnnotationSelector, LabelSelector: t.LabelSelector,
			}
		}
	}
	return out
}

// cleanup takes over fields that kubectl (client-side or server-side with
// --force-conflicts) or a pre-SSA controller wrote, so that Git stays the
// only owner, as Flux does; objects annotated ssa: Merge keep them.
var cleanup = ssa.ApplyCleanupOptions{
	Annotations: []string{corev1.LastAppliedConfigAnnotation},
	FieldManagers: []ssa.FieldManager{
		{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationApply},
		{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationUpdate},
		{Name: "before-first-apply", OperationType: metav1.ManagedFieldsOperationUpdate},
		{Name: FieldManager, OperationType: metav1.ManagedFieldsOperationUpdate},
	},
	Exclusions: map[string]string{LabelGroup + "/ssa": "Merge"},
}

// Applier applies and prunes objects on behalf of owners.
type Applier struct {
	client client.Client
	poller *polling.StatusPoller
	rm     *ssa.ResourceManager
}

var ssaOwner = ssa.Owner{Field: FieldManager, Group: LabelGroup}

// New returns an Applier that talks to the cluster through c.
func New(c client.Client) *Applier {
	poller := polling.NewStatusPoller(c, c.RESTMapper(), polling.Options{})
	return &Applier{client: c, poller: poller, rm: ssa.NewResourceManager(c, poller, ssaOwner)}
}

// Apply labels objects as the owner's and applies them in stages; objects
// whose live state already matches cost no write. The change set says what
// was created, configured or left unchanged; the versions say what state
// of each object the apply left (or found), for health checks that must
// not judge an older copy.
func (a *Applier) Apply(ctx context.Context, owner Owner, objects []*unstructured.Unstructured, opts Options) (*ssa.ChangeSet, Versions, error) {
	rec := &versionRecorder{Client: a.client}
	rm := ssa.NewResourceManager(rec, a.poller, ssaOwner)
	rm.SetOwnerLabels(objects, owner.Name, owner.Namespace)
	ao := ssa.DefaultApplyOptions()
	ao.Force = opts.Force
	ao.WaitInterval = 100 * time.Millisecond
	if opts.Timeout > 0 {
		ao.WaitTimeout = opts.Timeout
	}
	// Objects opt out of apply or of updates as with Flux.
	ao.ExclusionSelector = map[string]string{
		LabelGroup + "/reconcile": "disabled",
		LabelGroup + "/ssa":       "Ignore",
	}
	ao.IfNotPresentSelector = map[string]string{LabelGroup + "/ssa": "IfNotPresent"}
	ao.ForceSelector = map[string]string{LabelGroup + "/force": "enabled"}
	ao.Cleanup = cleanup
	ao.DriftIgnoreRules = IgnoreRules(opts.Ignore)
	cs, err := rm.ApplyAllStaged(ctx, objects, ao)
	if err != nil {
		return cs, rec.versions, fmt.Errorf("applying: %w", err)
	}
	return cs, rec.versions, nil
}

// Labels returns the ownership labels of owner.
func (a *Applier) Labels(owner Owner) map[string]string {
	return a.rm.GetOwnerLabels(owner.Name, owner.Namespace)
}
