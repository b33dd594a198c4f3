package kube

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	clientfeatures "k8s.io/client-go/features"
)

// weir's informers list rather than stream their first sync, unless the
// environment asks for streaming, as client-go lets any program's user.
func TestInformersListUnlessTheEnvironmentSaysOtherwise(t *testing.T) {
	if v := os.Getenv("WEIR_TEST_WATCHLIST_CHILD"); v != "" {
		// The child: report what the gate says with the environment given.
		if clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient) {
			t.Log("watchlist=on")
		} else {
			t.Log("watchlist=off")
		}
		return
	}
	run := func(env ...string) string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestInformersListUnlessTheEnvironmentSaysOtherwise$", "-test.v")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, watchListEnv+"=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, append([]string{"WEIR_TEST_WATCHLIST_CHILD=1"}, env...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the child test failed: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := run(); !strings.Contains(out, "watchlist=off") {
		t.Errorf("with no %s set, streaming lists are on:\n%s", watchListEnv, out)
	}
	if out := run(watchListEnv + "=true"); !strings.Contains(out, "watchlist=on") {
		t.Errorf("with %s=true, streaming lists are off:\n%s", watchListEnv, out)
	}
}
