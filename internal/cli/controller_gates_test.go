package cli

import (
	"strings"
	"testing"
)

// TestControllerRefusesUnknownFeatureGates: --feature-gates takes Flux's
// gates weir implements (DisableChartDigestTracking) and stops at once on
// any other, before reaching a cluster.
func TestControllerRefusesUnknownFeatureGates(t *testing.T) {
	_, _, err := weir(t, "controller", "--feature-gates=UseHelm3Defaults=true", "--kubeconfig", "/nonexistent")
	if err == nil || !strings.Contains(err.Error(), "--feature-gates: feature-gate 'UseHelm3Defaults' not supported") {
		t.Errorf("got %v, want the unknown gate refused", err)
	}
	_, _, err = weir(t, "controller", "--feature-gates=DisableChartDigestTracking=maybe")
	if err == nil || !strings.Contains(err.Error(), "feature-gates") {
		t.Errorf("got %v, want a value that is not a boolean refused", err)
	}
}
