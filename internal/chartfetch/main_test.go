package chartfetch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/weirhq/weir/internal/chartfetch"
)

// load reads a fetched chart and checks its name and version.
func load(t *testing.T, ch *chartfetch.Chart, name, version string) {
	t.Helper()
	c, err := loader.Load(ch.Path)
	if err != nil {
		t.Fatalf("the fetched chart %s does not load: %v", ch.Path, err)
	}
	if c.Name() != name || c.Metadata.Version != version {
		t.Fatalf("fetched %s %s, want %s %s", c.Name(), c.Metadata.Version, name, version)
	}
}

// wantUnavailable checks that err is an UnavailableError saying want.
func wantUnavailable(t *testing.T, err error, want string) {
	t.Helper()
	var u *chartfetch.UnavailableError
	if !errors.As(err, &u) {
		t.Fatalf("err = %v, want an UnavailableError", err)
	}
	if want != "" && !contains(err.Error(), want) {
		t.Fatalf("err = %q, want it to say %q", err, want)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
