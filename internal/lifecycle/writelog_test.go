package lifecycle

import (
	"errors"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

func written(uid types.UID, rv string) *sourcev1.GitRepository {
	return &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{UID: uid, ResourceVersion: rv}}
}

// The cache is trusted for an object this process never wrote, and for
// one whose last write the cache shows; not while it shows an older or
// another version, nor after a write whose outcome is unknown.
func TestWriteLogTrustsTheCacheOnlyOnceItHoldsTheLastWrite(t *testing.T) {
	var l writeLog
	if !l.caughtUp("a", "1") {
		t.Error("an object never written is not trusted from the cache")
	}
	l.record(written("a", "5"), nil)
	if l.caughtUp("a", "4") {
		t.Error("the cache at the version before the write is trusted")
	}
	if l.caughtUp("a", "6") {
		t.Error("the cache at a version this process did not write is trusted")
	}
	if !l.caughtUp("a", "5") {
		t.Error("the cache at the version written is not trusted")
	}
	if len(l.last) != 0 {
		t.Errorf("the log keeps %d entries once the cache caught up", len(l.last))
	}

	l.record(written("b", "7"), errors.New("timeout"))
	for _, rv := range []string{"6", "7", "8", ""} {
		if l.caughtUp("b", rv) {
			t.Errorf("after a write that failed, the cache at %q is trusted", rv)
		}
	}
	l.record(written("b", "9"), nil)
	if !l.caughtUp("b", "9") {
		t.Error("a successful write after a failed one is not trusted once cached")
	}

	l.record(written("", "3"), errors.New("already exists"))
	l.record(&unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"uid": "c", "resourceVersion": "2"}}}, nil)
	if len(l.last) != 0 {
		t.Errorf("a failed create or an applied unstructured object was recorded: %v", l.last)
	}
}
