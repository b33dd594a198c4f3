package apply

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const pollInterval = 200 * time.Millisecond

// timeoutOf is the time left before ctx's deadline, or a minute.
func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return time.Minute
}

// Unhealthy is one object that is not (yet) healthy.
type Unhealthy struct {
	// Object is "Kind/namespace/name".
	Object string
	// Status is kstatus' verdict: InProgress, Failed, NotFound, ...
	Status status.Status
	// Message says why, in kstatus' words.
	Message string
}

// Health reads each object's live state and judges it by kstatus rules. It
// returns the objects that are not Current; none means all are healthy.
// It does not wait: callers requeue when the objects change.
func Health(ctx context.Context, r client.Reader, objects []*unstructured.Unstructured) ([]Unhealthy, error) {
	var out []Unhealthy
	for _, o := range objects {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		err := r.Get(ctx, client.ObjectKeyFromObject(o), live)
		if apierrors.IsNotFound(err) {
			out = append(out, Unhealthy{Object: ref(o), Status: status.NotFoundStatus, Message: "not found"})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", ref(o), err)
		}
		res, err := status.Compute(live)
		if err != nil {
			return nil, fmt.Errorf("computing the status of %s: %w", ref(o), err)
		}
		if res.Status != status.CurrentStatus {
			out = append(out, Unhealthy{Object: ref(o), Status: res.Status, Message: res.Message})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Object < out[j].Object })
	return out, nil
}

// Failed reports whether any object has failed for good (kstatus Failed),
// as opposed to still progressing.
func Failed(u []Unhealthy) bool {
	for _, x := range u {
		if x.Status == status.FailedStatus {
			return true
		}
	}
	return false
}

// Summary writes unhealthy objects as Flux does in its health messages.
func Summary(u []Unhealthy) string {
	parts := make([]string, 0, len(u))
	for _, x := range u {
		parts = append(parts, fmt.Sprintf("%s status: '%s'", x.Object, x.Status))
	}
	return strings.Join(parts, ", ")
}

func ref(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}
