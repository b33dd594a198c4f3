package ui_test

import (
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/weirhq/weir/internal/testenv"
)

// env is the control plane the package's tests share. No controllers run:
// the tests write the objects' status themselves, as a controller would.
var env *testenv.Env

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	testenv.Main(m, &env, testenv.WithoutControllers())
}
