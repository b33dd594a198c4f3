package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxSnapshots is how many releases status.history keeps, as Flux.
const maxSnapshots = 5

// releaser runs the Helm actions of one reconcile of one HelmRelease.
type releaser struct {
	r   *Reconciler
	hr  *helmv2.HelmRelease
	cfg *action.Configuration
	// kube acts as the release's service account beside the Helm SDK.
	kube   client.Client
	chart  *loadedChart
	values map[string]any
	// waitOptions hold the status readers of spec.healthCheckExprs.
	waitOptions []kube.WaitOption
	// lastApply is how the latest release was applied: "ssa" or "csa".
	lastApply string
}

// run decides what the release needs and does it: install, upgrade,
// test, remediate; nothing when the release is deployed with this chart
// and these values.
func (x *releaser) run(ctx context.Context, force bool) error {
	name := ReleaseName(x.hr)
	last, err := x.last(name)
	if err != nil {
		return &stepError{reason: "GetLastReleaseFailed", err: fmt.Errorf("reading release '%s' from storage: %w", name, err)}
	}
	if last != nil {
		x.lastApply = last.ApplyMethod
	}
	if last != nil && last.Info.Status.IsPending() {
		// weir is the only writer of its releases and runs one action per
		// release at a time, so a pending release was left by a crash.
		if err := x.recoverPending(last); err != nil {
			return err
		}
	}
	if last != nil && last.Info.Status != common.StatusUninstalled && last.Chart != nil && last.Chart.Metadata != nil &&
		last.Chart.Metadata.Name != x.chart.Metadata.Name && x.hr.GetUpgrade().ChartNameChangeStrategy != helmv2.ChartNameChangeStrategyInPlaceUpdate {
		// Another chart under the same release: Flux's default
		// (chartNameChangeStrategy Reinstall) starts the release over.
		if err := x.uninstall(ctx, name); err != nil {
			return &stepError{reason: helmv2.UninstallFailedReason,
				err: fmt.Errorf("the chart changed from %s to %s: Helm uninstall of release %s failed: %w", last.Chart.Metadata.Name, x.chart.Metadata.Name, describe(last), err)}
		}
		x.r.event(x.hr, corev1.EventTypeNormal, helmv2.UninstallSucceededReason,
			fmt.Sprintf("Helm uninstall succeeded for release %s: the chart changed from %s to %s", describe(last), last.Chart.Metadata.Name, x.chart.Metadata.Name))
		x.hr.Status.History = nil
		return x.install(ctx)
	}
	switch {
	case last == nil || last.Info.Status == common.StatusUninstalled:
		return x.install(ctx)
	case last.Info.Status == common.StatusFailed || force || !x.inSync(last):
		return x.upgrade(ctx, force)
	}
	// The release was not made from this artifact: its ociDigest stays.
	x.record(last, "")
	if err := x.checkDrift(ctx, last); err != nil {
		return err
	}
	if x.hr.GetTest().Enable && !x.tested(last) {
		return x.test(ctx, last)
	}
	if ready := conditions.Get(x.hr, meta.ReadyCondition); ready != nil && ready.Status == metav1.ConditionTrue {
		// Nothing to do: Ready keeps its words but now speaks for this
		// generation (a resume, a change that needs no action), which is
		// what `weir reconcile` and `flux` wait for.
		x.markReady(last, ready.Reason, ready.Message)
	} else {
		x.markReady(last, helmv2.UpgradeSucceededReason, fmt.Sprintf("Helm release %s is deployed", describe(last)))
	}
	return nil
}

// last is the latest release of name, nil when there is none.
func (x *releaser) last(name string) (*release.Release, error) {
	rel, err := x.cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return asRelease(rel)
}

func asRelease(r any) (*release.Release, error) {
	rel, ok := r.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("unexpected release type %T", r)
	}
	return rel, nil
}

// recoverPending marks a release left pending as failed, so that the
// next action may run, and says so.
func (x *releaser) recoverPending(rel *release.Release) error {
	was := rel.Info.Status
	rel.SetStatus(common.StatusFailed, fmt.Sprintf("%s was interrupted; marked failed by weir to recover", was))
	if err := x.cfg.Releases.Update(rel); err != nil {
		return &stepError{reason: "GetLastReleaseFailed", err: fmt.Errorf("recovering release %s left %s: %w", describe(rel), was, err)}
	}
	x.r.event(x.hr, corev1.EventTypeWarning, "PendingReleaseRecovered",
		fmt.Sprintf("release %s was left %s by an interrupted operation; marked failed to recover", describe(rel), was))
	return nil
}

// inSync reports whether the deployed release runs the wanted chart with
// the wanted values.
func (x *releaser) inSync(rel *release.Release) bool {
	if rel.Chart == nil || rel.Chart.Metadata == nil {
		return false
	}
	md := x.chart.Metadata
	if rel.Chart.Metadata.Name != md.Name || rel.Chart.Metadata.Version != md.Version {
		return false
	}
	if valuesDigest(rel.Config) != valuesDigest(x.values) {
		return false
	}
	// A tag pushed again with other content has another version, with
	// its digest, unless DisableChartDigestTracking: then, as in Flux,
	// it does not upgrade the release.
	return x.hr.Status.ObservedPostRenderersDigest == postRenderersDigest(x.hr) &&
		x.hr.Status.ObservedCommonMetadataDigest == commonMetadataDigest(x.hr)
}

func (x *releaser) waitStrategy(disable bool) kube.WaitStrategy {
	if disable {
		return kube.HookOnlyStrategy
	}
	if x.hr.GetWaitStrategy() == helmv2.WaitStrategyLegacy {
		return kube.LegacyStrategy
	}
	// Event-driven: kstatus over watches, not a polling period.
	return kube.StatusWatcherStrategy
}

func (x *releaser) install(ctx context.Context) error {
	spec := x.hr.GetInstall()
	x.hr.Status.LastAttemptedReleaseAction = helmv2.ReleaseActionInstall
	a := action.NewInstall(x.cfg)
	a.ReleaseName = ReleaseName(x.hr)
	a.Namespace = x.hr.GetReleaseNamespace()
	a.Timeout = spec.GetTimeout(x.hr.GetTimeout()).Duration
	a.WaitStrategy = x.waitStrategy(spec.GetDisableWait())
	a.WaitOptions = x.waitOptions
	a.WaitForJobs = !spec.DisableWaitForJobs
	a.DisableHooks = spec.DisableHooks
	a.DisableOpenAPIValidation = spec.DisableOpenAPIValidation
	a.SkipSchemaValidation = spec.DisableSchemaValidation
	a.Replace = spec.Replace
	a.CreateNamespace = spec.CreateNamespace
	a.TakeOwnership = !spec.DisableTakeOwnership
	a.ServerSideApply = spec.ServerSideApply == nil || *spec.ServerSideApply
	a.ForceConflicts = a.ServerSideApply
	a.PostRenderer = postRenderer{hr: x.hr}
	a.PostRenderStrategy = postRenderStrategy(x.hr)
	switch spec.CRDs {
	case helmv2.Skip:
		a.SkipCRDs = true
	case helmv2.CreateReplace:
		// Helm's install only creates CRDs: existing ones are updated here
		// first, as Flux replaces them, and Helm skips them.
		if err := x.upgradeCRDs(ctx, helmv2.CreateReplace); err != nil {
			return x.installFailed(ctx, nil, err)
		}
		a.SkipCRDs = true
	case "", helmv2.Create:
		a.SkipCRDs = spec.SkipCRDs
	}
	a.Labels = map[string]string{NameLabel: x.hr.Name, NamespaceLabel: x.hr.Namespace}

	start := time.Now()
	res, err := a.RunWithContext(ctx, x.chart.Chart, x.values)
	x.hr.Status.LastAttemptedReleaseActionDuration = &metav1.Duration{Duration: time.Since(start)}
	rel, _ := asRelease(res)
	if err != nil {
		return x.installFailed(ctx, rel, err)
	}
	x.hr.Status.ObservedPostRenderersDigest = postRenderersDigest(x.hr)
	x.hr.Status.ObservedCommonMetadataDigest = commonMetadataDigest(x.hr)
	x.record(rel, x.chart.OCIDigest)
	msg := fmt.Sprintf("Helm install succeeded for release %s with chart %s", describe(rel), chartRef(rel))
	conditions.MarkTrue(x.hr, helmv2.ReleasedCondition, helmv2.InstallSucceededReason, "%s", msg)
	x.r.event(x.hr, corev1.EventTypeNormal, helmv2.InstallSucceededReason, msg)
	if x.hr.GetTest().Enable {
		return x.test(ctx, rel)
	}
	x.markReady(rel, helmv2.InstallSucceededReason, msg)
	return nil
}

// installFailed counts the failure and remediates as spec.install.remediation
// says: the failed release is uninstalled so the next attempt starts over.
func (x *releaser) installFailed(ctx context.Context, rel *release.Release, err error) error {
	if rel != nil {
		x.record(rel, x.chart.OCIDigest)
	}
	rem := x.hr.GetInstall().GetRemediation()
	rem.IncrementFailureCount(x.hr)
	x.hr.Status.Failures++
	msg := fmt.Sprintf("Helm install failed for release %s/%s with chart %s@%s: %s",
		x.hr.GetReleaseNamespace(), ReleaseName(x.hr), x.chart.Metadata.Name, x.chart.Metadata.Version, err)
	conditions.MarkFalse(x.hr, helmv2.ReleasedCondition, helmv2.InstallFailedReason, "%s", msg)
	x.r.event(x.hr, corev1.EventTypeWarning, helmv2.InstallFailedReason, msg)
	exhausted := rem.RetriesExhausted(x.hr)
	if rel != nil && (!exhausted || rem.MustRemediateLastFailure()) {
		x.remediateByUninstall(ctx, rel)
	}
	if exhausted {
		return x.outOfRetries("install", rem.GetFailureCount(x.hr), msg)
	}
	return &stepError{reason: helmv2.InstallFailedReason, err: errors.New(msg)}
}

func (x *releaser) upgrade(ctx context.Context, force bool) error {
	spec := x.hr.GetUpgrade()
	x.hr.Status.LastAttemptedReleaseAction = helmv2.ReleaseActionUpgrade
	a := action.NewUpgrade(x.cfg)
	a.Namespace = x.hr.GetReleaseNamespace()
	a.Timeout = spec.GetTimeout(x.hr.GetTimeout()).Duration
	a.WaitStrategy = x.waitStrategy(spec.GetDisableWait())
	a.WaitOptions = x.waitOptions
	a.WaitForJobs = !spec.DisableWaitForJobs
	a.DisableHooks = spec.DisableHooks
	a.DisableOpenAPIValidation = spec.DisableOpenAPIValidation
	a.SkipSchemaValidation = spec.DisableSchemaValidation
	// A force request runs an upgrade even when nothing changed, as in
	// Flux; spec.upgrade.force is Helm's replace.
	a.ForceReplace = spec.Force
	a.CleanupOnFail = spec.CleanupOnFail
	a.MaxHistory = x.hr.GetMaxHistory()
	a.ResetValues = !spec.PreserveValues
	a.ReuseValues = spec.PreserveValues
	a.TakeOwnership = !spec.DisableTakeOwnership
	a.PostRenderer = postRenderer{hr: x.hr}
	a.PostRenderStrategy = postRenderStrategy(x.hr)
	a.SkipCRDs = spec.CRDs == "" || spec.CRDs == helmv2.Skip
	switch spec.ServerSideApply {
	case helmv2.ServerSideApplyEnabled:
		a.ServerSideApply = "true"
	case helmv2.ServerSideApplyDisabled:
		a.ServerSideApply = "false"
	default:
		a.ServerSideApply = "auto"
	}
	// Server-side apply takes over conflicting fields, as helm-controller
	// does; Helm refuses that with replace or with client-side apply.
	a.ForceConflicts = !a.ForceReplace && (a.ServerSideApply == "true" || (a.ServerSideApply == "auto" && x.lastApply == "ssa"))
	a.Labels = map[string]string{NameLabel: x.hr.Name, NamespaceLabel: x.hr.Namespace}

	if spec.CRDs == helmv2.Create || spec.CRDs == helmv2.CreateReplace {
		if err := x.upgradeCRDs(ctx, spec.CRDs); err != nil {
			return x.upgradeFailed(ctx, nil, err)
		}
	}
	start := time.Now()
	res, err := a.RunWithContext(ctx, ReleaseName(x.hr), x.chart.Chart, x.values)
	x.hr.Status.LastAttemptedReleaseActionDuration = &metav1.Duration{Duration: time.Since(start)}
	rel, _ := asRelease(res)
	if err != nil {
		return x.upgradeFailed(ctx, rel, err)
	}
	x.hr.Status.ObservedPostRenderersDigest = postRenderersDigest(x.hr)
	x.hr.Status.ObservedCommonMetadataDigest = commonMetadataDigest(x.hr)
	x.record(rel, x.chart.OCIDigest)
	msg := fmt.Sprintf("Helm upgrade succeeded for release %s with chart %s", describe(rel), chartRef(rel))
	conditions.MarkTrue(x.hr, helmv2.ReleasedCondition, helmv2.UpgradeSucceededReason, "%s", msg)
	conditions.Delete(x.hr, helmv2.RemediatedCondition)
	x.r.event(x.hr, corev1.EventTypeNormal, helmv2.UpgradeSucceededReason, msg)
	if x.hr.GetTest().Enable {
		return x.test(ctx, rel)
	}
	x.markReady(rel, helmv2.UpgradeSucceededReason, msg)
	return nil
}

// upgradeFailed counts the failure and remediates as
// spec.upgrade.remediation says: rollback to the last deployed release
// (the default) or uninstall.
func (x *releaser) upgradeFailed(ctx context.Context, rel *release.Release, err error) error {
	if rel != nil {
		x.record(rel, x.chart.OCIDigest)
	}
	rem := x.hr.GetUpgrade().GetRemediation()
	rem.IncrementFailureCount(x.hr)
	x.hr.Status.Failures++
	msg := fmt.Sprintf("Helm upgrade failed for release %s/%s with chart %s@%s: %s",
		x.hr.GetReleaseNamespace(), ReleaseName(x.hr), x.chart.Metadata.Name, x.chart.Metadata.Version, err)
	conditions.MarkFalse(x.hr, helmv2.ReleasedCondition, helmv2.UpgradeFailedReason, "%s", msg)
	x.r.event(x.hr, corev1.EventTypeWarning, helmv2.UpgradeFailedReason, msg)
	exhausted := rem.RetriesExhausted(x.hr)
	if rel != nil && (!exhausted || rem.MustRemediateLastFailure()) {
		if rem.GetStrategy() == helmv2.UninstallRemediationStrategy {
			x.remediateByUninstall(ctx, rel)
		} else {
			x.rollback(rel)
		}
	}
	if exhausted {
		return x.outOfRetries("upgrade", rem.GetFailureCount(x.hr), msg)
	}
	return &stepError{reason: helmv2.UpgradeFailedReason, err: errors.New(msg)}
}

// outOfRetries stalls the HelmRelease until its spec changes or a reset
// is requested.
func (x *releaser) outOfRetries(what string, count int64, msg string) error {
	return &stepError{reason: "RetriesExceeded", stalled: true,
		err: fmt.Errorf("Failed to %s after %d attempt(s): %s", what, count, msg)}
}

// rollback rolls the release back to its last deployed revision.
func (x *releaser) rollback(failed *release.Release) {
	spec := x.hr.GetRollback()
	a := action.NewRollback(x.cfg)
	a.Timeout = spec.GetTimeout(x.hr.GetTimeout()).Duration
	a.WaitStrategy = x.waitStrategy(spec.GetDisableWait())
	a.WaitOptions = x.waitOptions
	a.WaitForJobs = !spec.DisableWaitForJobs
	a.DisableHooks = spec.DisableHooks
	a.ForceReplace = spec.Force
	a.CleanupOnFail = spec.CleanupOnFail
	a.MaxHistory = x.hr.GetMaxHistory()
	// rollback.serverSideApply: enabled, disabled, or auto (the default:
	// as the target release was applied).
	switch spec.ServerSideApply {
	case helmv2.ServerSideApplyEnabled:
		a.ServerSideApply = "true"
	case helmv2.ServerSideApplyDisabled:
		a.ServerSideApply = "false"
	default:
		a.ServerSideApply = "auto"
	}
	a.ForceConflicts = !a.ForceReplace && (a.ServerSideApply == "true" || (a.ServerSideApply == "auto" && failed.ApplyMethod == "ssa"))
	// The target is the newest release before the failed one that was
	// deployed, as helm-controller picks it: not merely the previous
	// revision, which may have failed too.
	target, err := x.lastSuccessful(failed)
	if err == nil && target == nil {
		err = errors.New("no earlier release was deployed successfully")
	}
	if err == nil {
		a.Version = target.Version
		err = a.Run(failed.Name)
	}
	if last, lerr := x.last(failed.Name); lerr == nil && last != nil {
		x.record(last, "")
	}
	if err != nil {
		msg := fmt.Sprintf("Helm rollback of release %s failed: %s", describe(failed), err)
		conditions.MarkFalse(x.hr, helmv2.RemediatedCondition, helmv2.RollbackFailedReason, "%s", msg)
		x.r.event(x.hr, corev1.EventTypeWarning, helmv2.RollbackFailedReason, msg)
		return
	}
	msg := fmt.Sprintf("Helm rollback to previous release %s with chart %s succeeded", describe(target), chartRef(target))
	conditions.MarkTrue(x.hr, helmv2.RemediatedCondition, helmv2.RollbackSucceededReason, "%s", msg)
	x.r.event(x.hr, corev1.EventTypeNormal, helmv2.RollbackSucceededReason, msg)
}

// lastSuccessful is the newest release older than failed whose status
// says it was deployed (deployed or superseded), nil when there is none.
func (x *releaser) lastSuccessful(failed *release.Release) (*release.Release, error) {
	history, err := x.cfg.Releases.History(failed.Name)
	if err != nil {
		return nil, fmt.Errorf("reading the history of release %s: %w", failed.Name, err)
	}
	var best *release.Release
	for _, h := range history {
		rel, err := asRelease(h)
		if err != nil {
			return nil, err
		}
		if rel.Version >= failed.Version || (rel.Info.Status != common.StatusDeployed && rel.Info.Status != common.StatusSuperseded) {
			continue
		}
		if best == nil || rel.Version > best.Version {
			best = rel
		}
	}
	return best, nil
}

// remediateByUninstall uninstalls a failed release.
func (x *releaser) remediateByUninstall(ctx context.Context, failed *release.Release) {
	if err := x.uninstall(ctx, failed.Name); err != nil {
		msg := fmt.Sprintf("Helm uninstall of release %s failed: %s", describe(failed), err)
		conditions.MarkFalse(x.hr, helmv2.RemediatedCondition, helmv2.UninstallFailedReason, "%s", msg)
		x.r.event(x.hr, corev1.EventTypeWarning, helmv2.UninstallFailedReason, msg)
		return
	}
	if last, err := x.last(failed.Name); err == nil && last != nil {
		x.record(last, "")
	}
	msg := fmt.Sprintf("Helm uninstall succeeded for release %s", describe(failed))
	conditions.MarkTrue(x.hr, helmv2.RemediatedCondition, helmv2.UninstallSucceededReason, "%s", msg)
	x.r.event(x.hr, corev1.EventTypeNormal, helmv2.UninstallSucceededReason, msg)
}

func (x *releaser) uninstall(ctx context.Context, name string) error {
	spec := x.hr.GetUninstall()
	a := action.NewUninstall(x.cfg)
	a.KeepHistory = spec.KeepHistory
	a.DisableHooks = spec.DisableHooks
	a.Timeout = spec.GetTimeout(x.hr.GetTimeout()).Duration
	a.WaitStrategy = x.waitStrategy(spec.GetDisableWait())
	a.WaitOptions = x.waitOptions
	a.DeletionPropagation = spec.GetDeletionPropagation()
	a.IgnoreNotFound = true
	done := make(chan error, 1)
	go func() { _, err := a.Run(name); done <- err }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// uninstallOnDelete removes the release of a deleted HelmRelease.
func (x *releaser) uninstallOnDelete(ctx context.Context) error {
	name := ReleaseName(x.hr)
	last, err := x.last(name)
	if err != nil {
		return fmt.Errorf("reading release '%s' from storage: %w", name, err)
	}
	if last == nil || last.Info.Status == common.StatusUninstalled {
		return nil
	}
	if last.Info.Status.IsPending() {
		if err := x.recoverPending(last); err != nil {
			return err
		}
	}
	if err := x.uninstall(ctx, name); err != nil {
		return fmt.Errorf("Helm uninstall failed for release %s: %w", describe(last), err)
	}
	x.r.event(x.hr, corev1.EventTypeNormal, helmv2.UninstallSucceededReason, fmt.Sprintf("Helm uninstall succeeded for release %s", describe(last)))
	return nil
}

// test runs the chart's test hooks; a failure counts against the last
// action's remediation unless ignored.
func (x *releaser) test(ctx context.Context, rel *release.Release) error {
	spec := x.hr.GetTest()
	a := action.NewReleaseTesting(x.cfg)
	a.Namespace = rel.Namespace
	a.Timeout = spec.GetTimeout(x.hr.GetTimeout()).Duration
	filters := map[string][]string{}
	for _, f := range spec.GetFilters() {
		k := "name"
		if f.Exclude {
			k = "!name"
		}
		filters[k] = append(filters[k], f.Name)
	}
	a.Filters = filters
	res, shutdown, err := a.Run(rel.Name)
	if shutdown != nil {
		defer func() { _ = shutdown() }()
	}
	if tested, cerr := asRelease(res); cerr == nil && tested != nil {
		x.record(tested, "")
		rel = tested
	}
	if err != nil {
		msg := fmt.Sprintf("Helm test failed for release %s with chart %s: %s", describe(rel), chartRef(rel), err)
		conditions.MarkFalse(x.hr, helmv2.TestSuccessCondition, helmv2.TestFailedReason, "%s", msg)
		x.r.event(x.hr, corev1.EventTypeWarning, helmv2.TestFailedReason, msg)
		// remediation.ignoreTestFailures, of the action that made the
		// release, overrides test.ignoreFailures.
		ignore := spec.IgnoreFailures
		if rem := x.hr.GetActiveRemediation(); rem != nil {
			ignore = rem.MustIgnoreTestFailures(spec.IgnoreFailures)
		}
		if ignore {
			x.markReady(rel, helmv2.TestFailedReason, msg)
			return nil
		}
		// A failed test counts against the last action's retries.
		rem := x.hr.GetActiveRemediation()
		rem.IncrementFailureCount(x.hr)
		x.hr.Status.Failures++
		if rem.RetriesExhausted(x.hr) {
			return x.outOfRetries("test", rem.GetFailureCount(x.hr), msg)
		}
		return &stepError{reason: helmv2.TestFailedReason, err: errors.New(msg)}
	}
	n := 0
	for _, h := range rel.Hooks {
		if isTestHook(h) {
			n++
		}
	}
	msg := fmt.Sprintf("Helm test succeeded for release %s with chart %s: %d test hooks completed successfully", describe(rel), chartRef(rel), n)
	conditions.MarkTrue(x.hr, helmv2.TestSuccessCondition, helmv2.TestSucceededReason, "%s", msg)
	x.r.event(x.hr, corev1.EventTypeNormal, helmv2.TestSucceededReason, msg)
	x.markReady(rel, helmv2.TestSucceededReason, msg)
	return nil
}

func isTestHook(h *release.Hook) bool {
	for _, e := range h.Events {
		if e == release.HookTest {
			return true
		}
	}
	return false
}

// tested reports whether the release's test hooks ran since it was deployed.
func (x *releaser) tested(rel *release.Release) bool {
	latest := x.hr.Status.History.Latest()
	return latest != nil && latest.Version == rel.Version && latest.HasBeenTested() &&
		!latest.HasTestInPhase("Failed")
}

// markReady records a deployed, healthy release.
func (x *releaser) markReady(rel *release.Release, reason, msg string) {
	conditions.Delete(x.hr, meta.ReconcilingCondition)
	conditions.Delete(x.hr, meta.StalledCondition)
	conditions.MarkTrue(x.hr, meta.ReadyCondition, reason, "%s", msg)
	x.hr.Status.LastReleaseRevision = rel.Version
}

// record writes the release into status.history, newest first.
func (x *releaser) record(rel *release.Release, ociDigest string) {
	if rel == nil {
		return
	}
	s := snapshot(rel)
	s.OCIDigest = ociDigest
	h := x.hr.Status.History
	for i, old := range h {
		if old.Name == s.Name && old.Namespace == s.Namespace && old.Version == s.Version {
			if s.OCIDigest == "" {
				s.OCIDigest = old.OCIDigest
			}
			if s.TestHooks == nil {
				s.TestHooks = old.TestHooks
			}
			h = append(h[:i:i], h[i+1:]...)
			break
		}
	}
	h = append(helmv2.Snapshots{s}, h...)
	sort.SliceStable(h, func(i, j int) bool { return h[i].Version > h[j].Version })
	if len(h) > maxSnapshots {
		h = h[:maxSnapshots]
	}
	x.hr.Status.History = h
}

// snapshot is the status.history entry of a release, as Flux writes it.
func snapshot(rel *release.Release) *helmv2.Snapshot {
	s := &helmv2.Snapshot{
		APIVersion:    "v1",
		Digest:        releaseDigest(rel),
		Name:          rel.Name,
		Namespace:     rel.Namespace,
		Version:       rel.Version,
		ConfigDigest:  valuesDigest(rel.Config),
		FirstDeployed: metav1.NewTime(rel.Info.FirstDeployed),
		LastDeployed:  metav1.NewTime(rel.Info.LastDeployed),
	}
	if rel.Info != nil {
		s.Status = rel.Info.Status.String()
		if !rel.Info.Deleted.IsZero() {
			s.Deleted = metav1.NewTime(rel.Info.Deleted)
		}
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		s.ChartName = rel.Chart.Metadata.Name
		s.ChartVersion = rel.Chart.Metadata.Version
		s.AppVersion = rel.Chart.Metadata.AppVersion
	}
	tests := map[string]*helmv2.TestHookStatus{}
	for _, h := range rel.Hooks {
		if !isTestHook(h) || h.LastRun.StartedAt.IsZero() {
			continue
		}
		tests[h.Name] = &helmv2.TestHookStatus{
			LastStarted:   metav1.NewTime(h.LastRun.StartedAt),
			LastCompleted: metav1.NewTime(h.LastRun.CompletedAt),
			Phase:         string(h.LastRun.Phase),
		}
	}
	if len(tests) > 0 {
		s.SetTestHooks(tests)
	}
	return s
}

// releaseDigest is sha256 of the release's JSON, as Flux's snapshot digest.
func releaseDigest(rel *release.Release) string {
	b, _ := json.Marshal(rel)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// postRenderersDigest is helm-controller's ObservedPostRenderersDigest:
// sha256 of the JSON encoding (with its newline) of spec.postRenderers, ""
// when unset. A change of it needs an upgrade even with the same chart and
// values; computed as Flux does, a release Flux left is not upgraded when
// weir takes it over.
func postRenderersDigest(hr *helmv2.HelmRelease) string {
	if hr.Spec.PostRenderers == nil {
		return ""
	}
	return jsonDigest(hr.Spec.PostRenderers)
}

// commonMetadataDigest is helm-controller's ObservedCommonMetadataDigest.
func commonMetadataDigest(hr *helmv2.HelmRelease) string {
	if hr.Spec.CommonMetadata == nil {
		return ""
	}
	return jsonDigest(hr.Spec.CommonMetadata)
}

// jsonDigest is sha256:<hex> of v encoded by json.Encoder.
func jsonDigest(v any) string {
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(v); err != nil {
		return ""
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// describe names a release as Flux does: namespace/name.vN.
func describe(rel *release.Release) string {
	if rel == nil {
		return ""
	}
	return fmt.Sprintf("%s/%s.v%d", rel.Namespace, rel.Name, rel.Version)
}

func chartRef(rel *release.Release) string {
	if rel == nil || rel.Chart == nil || rel.Chart.Metadata == nil {
		return ""
	}
	return rel.Chart.Metadata.Name + "@" + rel.Chart.Metadata.Version
}

// postRenderStrategy is spec.postRenderStrategy for the Helm SDK; empty
// keeps Helm's default, combined, which is Flux's too.
func postRenderStrategy(hr *helmv2.HelmRelease) action.PostRenderStrategy {
	return action.PostRenderStrategy(hr.GetPostRenderStrategy())
}
