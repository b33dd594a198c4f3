package uninstalltest

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/weirhq/weir/config/crd"
)

func TestAAATiming(t *testing.T) {
	time.Sleep(15 * time.Second)
	crds, _ := crd.All()
	for _, cr := range crds {
		v := cr.Spec.Versions[0].Name
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.GroupVersionKind{Group: cr.Spec.Group, Version: v, Kind: cr.Spec.Names.ListKind})
		start := time.Now()
		err := env.Client.List(context.Background(), list)
		t.Logf("%s %s: %v in %s", cr.Spec.Group, cr.Spec.Names.ListKind, err, time.Since(start))
	}
	t.Logf("qps %v burst %v", env.Config.QPS, env.Config.Burst)
}
