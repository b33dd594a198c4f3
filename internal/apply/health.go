package apply

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/runtime/statusreaders"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// StatusFunc judges one live object's health, in kstatus' terms.
type StatusFunc func(ctx context.Context, live *unstructured.Unstructured) (*status.Result, error)

// Evaluators replace kstatus' rules for some kinds, such as those of
// Flux's spec.healthCheckExprs. Jobs are judged as Flux judges them (Current
// only once complete) unless an evaluator says otherwise.
type Evaluators map[schema.GroupKind]StatusFunc

func (e Evaluators) compute(ctx context.Context, live *unstructured.Unstructured) (*status.Result, error) {
	gk := live.GroupVersionKind().GroupKind()
	if f, ok := e[gk]; ok {
		return f(ctx, live)
	}
	if gk == (schema.GroupKind{Group: "batch", Kind: "Job"}) {
		res := statusreaders.ComputeJobStatus(live)
		return &res, nil
	}
	return status.Compute(live)
}

// Health reads each object's live state and judges it by kstatus rules, or
// by the evaluator for its kind. It returns the objects that are not
// Current; none means all are healthy. It does not wait: callers requeue
// when the objects change.
//
// An object of objects that carries a UID and a generation (see Expect)
// is judged only on a copy at least that new: r may be a cache that has
// not seen the apply yet, and the copy it holds from before would show the
// old spec's health (a Deployment whose rollout of the old template was
// complete), so such a copy counts as InProgress.
func Health(ctx context.Context, r client.Reader, objects []*unstructured.Unstructured, eval Evaluators) ([]Unhealthy, error) {
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
		if stale(o, live) {
			out = append(out, Unhealthy{Object: ref(o), Status: status.InProgressStatus, Message: "the applied change is not observed yet"})
			continue
		}
		res, err := eval.compute(ctx, live)
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

// Expect records on target, an object that holds an identity, the version
// the apply left, so that Health does not judge an older copy.
func Expect(target *unstructured.Unstructured, v Version) {
	target.SetUID(v.UID)
	target.SetGeneration(v.Generation)
}

// stale reports whether live was read before the version target expects.
func stale(target, live *unstructured.Unstructured) bool {
	if target.GetUID() != "" && live.GetUID() != target.GetUID() {
		return true
	}
	return live.GetGeneration() < target.GetGeneration()
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
