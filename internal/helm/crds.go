package helm

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// upgradeCRDs applies the chart's crds/ before an upgrade, as
// helm-controller does for spec.upgrade.crds (Helm itself never touches
// them on upgrade): Create adds the missing ones, CreateReplace also
// updates the existing ones. The CRDs are Established before the upgrade
// goes on, and the Helm SDK's discovery is refreshed.
func (x *releaser) upgradeCRDs(ctx context.Context, policy helmv2.CRDsPolicy) error {
	var objects []*unstructured.Unstructured
	for _, c := range x.chart.CRDObjects() {
		objs, err := ssautils.ReadObjects(bytes.NewReader(c.File.Data))
		if err != nil {
			return fmt.Errorf("reading %s of chart %s: %w", c.Filename, x.chart.Metadata.Name, err)
		}
		objects = append(objects, objs...)
	}
	if len(objects) == 0 {
		return nil
	}
	var apply []*unstructured.Unstructured
	for _, o := range objects {
		if policy == helmv2.CreateReplace {
			apply = append(apply, o)
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		err := x.kube.Get(ctx, client.ObjectKeyFromObject(o), live)
		if apierrors.IsNotFound(err) {
			apply = append(apply, o)
		} else if err != nil {
			return fmt.Errorf("reading CRD %s: %w", o.GetName(), err)
		}
	}
	if len(apply) == 0 {
		return nil
	}
	poller := polling.NewStatusPoller(x.kube, x.kube.RESTMapper(), polling.Options{})
	rm := ssa.NewResourceManager(x.kube, poller, ssa.Owner{Field: ControllerName, Group: helmv2.GroupVersion.Group})
	// Never Force: recreating a CRD whose immutable fields changed would
	// delete every custom resource of it. Such a change fails instead.
	opts := ssa.DefaultApplyOptions()
	cs, err := rm.ApplyAll(ctx, apply, opts)
	if err != nil {
		return fmt.Errorf("applying the CRDs of chart %s (policy %s): %w", x.chart.Metadata.Name, policy, err)
	}
	if err := rm.WaitForSetWithContext(ctx, cs.ToObjMetadataSet(), ssa.WaitOptions{Interval: 100 * time.Millisecond, Timeout: x.hr.GetTimeout().Duration}); err != nil {
		return fmt.Errorf("waiting for the CRDs of chart %s to be Established: %w", x.chart.Metadata.Name, err)
	}
	if dc, err := x.cfg.RESTClientGetter.ToDiscoveryClient(); err == nil {
		dc.Invalidate()
	}
	if m, err := x.cfg.RESTClientGetter.ToRESTMapper(); err == nil {
		if r, ok := m.(interface{ Reset() }); ok {
			r.Reset()
		}
	}
	return nil
}
