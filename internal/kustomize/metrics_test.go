package kustomize_test

import (
	"fmt"
	"testing"

	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

func TestReconcileDurationIsRecordedAsFluxNamesIt(t *testing.T) {
	f := newFixture(t, map[string]string{"app/cm.yaml": fmt.Sprintf(configMap, "cm", "x")})
	ks := f.kustomization("measured", "./app", nil)
	f.waitApplied(ks, f.revision())

	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "gotk_reconcile_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == "Kustomization" && labels["name"] == "measured" && labels["namespace"] == f.ns {
				if m.GetHistogram().GetSampleCount() == 0 {
					t.Fatalf("the histogram of %s has no sample", ks.Name)
				}
				return
			}
		}
	}
	t.Fatal("gotk_reconcile_duration_seconds has no series for the Kustomization")
}
