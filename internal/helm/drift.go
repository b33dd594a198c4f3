package helm

import (
	"context"
	"fmt"
	"sort"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	release "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// checkDrift compares the release's objects with the cluster through a
// server-side dry run, as helm-controller's driftDetection does. With
// mode enabled the drifted objects are applied back; with warn the drift
// is only reported. Drift is looked for on every reconcile of a deployed
// release (each interval, and on request).
func (x *releaser) checkDrift(ctx context.Context, rel *release.Release) error {
	dd := x.hr.GetDriftDetection()
	mode := dd.GetMode()
	if mode == helmv2.DriftDetectionDisabled {
		conditions.Delete(x.hr, helmv2.DriftedCondition)
		return nil
	}
	objects, err := ssautils.ReadObjects(strings.NewReader(rel.Manifest))
	if err != nil {
		return &stepError{reason: helmv2.DriftDetectedReason, err: fmt.Errorf("reading the manifest of release %s: %w", describe(rel), err)}
	}
	mapper := x.kube.RESTMapper()
	for _, o := range objects {
		// Helm writes its ownership metadata into every object it applies:
		// the desired state has it too, else it would always look drifted.
		setHelmOwnership(o, rel)
		if o.GetNamespace() != "" {
			continue
		}
		m, err := mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if err == nil && m.Scope.Name() == apimeta.RESTScopeNameNamespace {
			o.SetNamespace(rel.Namespace)
		}
	}
	var rules []jsondiff.IgnoreRule
	for _, ig := range dd.Ignore {
		rule := jsondiff.IgnoreRule{Paths: ig.Paths}
		if t := ig.Target; t != nil {
			rule.Selector = &jsondiff.Selector{Group: t.Group, Version: t.Version, Kind: t.Kind, Name: t.Name, Namespace: t.Namespace,
				AnnotationSelector: t.AnnotationSelector, LabelSelector: t.LabelSelector}
		}
		rules = append(rules, rule)
	}
	rm := ssa.NewResourceManager(x.kube, nil, ssa.Owner{Field: ControllerName, Group: helmv2.GroupVersion.Group})
	opts := ssa.DefaultDiffOptions()
	opts.DriftIgnoreRules = rules
	// Objects labelled or annotated helm.toolkit.fluxcd.io/driftDetection:
	// disabled are left out, as in Flux.
	opts.Exclusions = map[string]string{helmv2.DriftDetectionMetadataKey: helmv2.DriftDetectionDisabledValue}
	var drifted []*unstructured.Unstructured
	var names []string
	for _, o := range objects {
		entry, _, _, err := rm.Diff(ctx, o, opts)
		if err != nil {
			return &stepError{reason: helmv2.DriftDetectedReason, err: fmt.Errorf("comparing release %s with the cluster: %w", describe(rel), err)}
		}
		if entry != nil && (entry.Action == ssa.ConfiguredAction || entry.Action == ssa.CreatedAction) {
			drifted = append(drifted, o)
			names = append(names, entry.Subject)
		}
	}
	if len(drifted) == 0 {
		conditions.MarkFalse(x.hr, helmv2.DriftedCondition, helmv2.NoDriftDetectedReason, "No drift detected for release %s", describe(rel))
		return nil
	}
	sort.Strings(names)
	msg := fmt.Sprintf("Cluster state of release %s has drifted from the desired state: %s", describe(rel), strings.Join(names, ", "))
	conditions.MarkTrue(x.hr, helmv2.DriftedCondition, helmv2.DriftDetectedReason, "%s", msg)
	x.r.event(x.hr, corev1.EventTypeWarning, helmv2.DriftDetectedReason, msg)
	if mode != helmv2.DriftDetectionEnabled {
		return nil
	}
	ao := ssa.DefaultApplyOptions()
	ao.Force = true
	if _, err := rm.ApplyAll(ctx, drifted, ao); err != nil {
		return &stepError{reason: helmv2.DriftDetectedReason, err: fmt.Errorf("correcting the drift of release %s: %w", describe(rel), err)}
	}
	fixed := fmt.Sprintf("Cluster state of release %s corrected: %s", describe(rel), strings.Join(names, ", "))
	conditions.MarkFalse(x.hr, helmv2.DriftedCondition, helmv2.NoDriftDetectedReason, "%s", fixed)
	x.r.event(x.hr, corev1.EventTypeNormal, "DriftCorrected", fixed)
	return nil
}

// setHelmOwnership adds the label and annotations with which Helm marks the
// objects of a release.
func setHelmOwnership(o *unstructured.Unstructured, rel *release.Release) {
	labels := o.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels["app.kubernetes.io/managed-by"] = "Helm"
	o.SetLabels(labels)
	annotations := o.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations["meta.helm.sh/release-name"] = rel.Name
	annotations["meta.helm.sh/release-namespace"] = rel.Namespace
	o.SetAnnotations(annotations)
}
