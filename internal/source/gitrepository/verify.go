package gitrepository

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/gitsig"
	"github.com/weirhq/weir/internal/lifecycle"
)

// The reasons source-controller gives a failed verification.
const (
	invalidCommitSignatureReason  = "InvalidCommitSignature"
	invalidTagSignatureReason     = "InvalidTagSignature"
	invalidGitObjectReason        = "InvalidGitObject"
	invalidVerificationModeReason = "InvalidVerificationMode"
)

// verificationFailure is a refused signature check: its reason and whether
// only a spec change can fix it.
type verificationFailure struct {
	reason string
	stall  bool
	err    error
}

func (f *verificationFailure) Error() string { return f.err.Error() }
func (f *verificationFailure) Unwrap() error { return f.err }

// checkVerifiable refuses, before anything is fetched, a Tag mode on a ref
// that is not a tag: no commit can ever pass it.
func checkVerifiable(obj *sourcev1.GitRepository, tgt target) *verificationFailure {
	v := obj.Spec.Verification
	if v == nil || !v.VerifyTag() || tgt.refName.IsTag() {
		return nil
	}
	return &verificationFailure{reason: invalidVerificationModeReason, stall: true,
		err: errors.New("cannot verify tag object's signature if a tag reference is not specified")}
}

// verifySignatures checks the signatures spec.verify asks for on the
// checked-out commit and, for a tag ref, on the tag. It returns the message
// of SourceVerified=True, as Flux words it, or the failure.
func verifySignatures(ctx context.Context, c client.Client, obj *sourcev1.GitRepository, repo *git.Repository, tgt target, commit *object.Commit) (string, *verificationFailure) {
	v := obj.Spec.Verification
	key := client.ObjectKey{Namespace: obj.Namespace, Name: v.SecretRef.Name}
	var secret corev1.Secret
	if err := c.Get(ctx, key, &secret); err != nil {
		return "", &verificationFailure{reason: sourcev1.VerificationError, err: fmt.Errorf("public keys secret error: %w", err)}
	}
	keys, err := gitsig.ReadKeys(secret.Data)
	if err != nil {
		return "", &verificationFailure{reason: sourcev1.VerificationError, err: fmt.Errorf("public keys secret '%s': %w", key, err)}
	}
	trusted := fmt.Sprintf("the trusted keys in Secret '%s' are %s", key, keys)

	var msg strings.Builder
	if v.VerifyTag() {
		tag, name, err := tagObject(repo, tgt.refName)
		if err != nil {
			return "", &verificationFailure{reason: invalidGitObjectReason, err: err}
		}
		if tag == nil {
			return "", &verificationFailure{reason: invalidGitObjectReason,
				err: fmt.Errorf("cannot verify signature of tag '%s' since it is not signed (it is a lightweight tag); %s", name, trusted)}
		}
		id := tag.Name + "@" + tag.Hash.String()
		if tag.PGPSignature == "" {
			return "", &verificationFailure{reason: invalidGitObjectReason,
				err: fmt.Errorf("cannot verify signature of tag '%s' since it is not signed; %s", id, trusted)}
		}
		signer, err := keys.VerifyTag(tag)
		if err != nil {
			return "", &verificationFailure{reason: invalidTagSignatureReason,
				err: fmt.Errorf("signature verification of tag '%s' failed: %w; %s", id, err, trusted)}
		}
		fmt.Fprintf(&msg, "verified signature of\n\t- tag '%s' with key '%s'", id, signer)
	}
	if v.VerifyHEAD() {
		signer, err := keys.VerifyCommit(commit)
		if err != nil {
			return "", &verificationFailure{reason: invalidCommitSignatureReason,
				err: fmt.Errorf("signature verification of commit '%s' failed: %w; %s", commit.Hash, err, trusted)}
		}
		if msg.Len() == 0 {
			msg.WriteString("verified signature of")
		}
		fmt.Fprintf(&msg, "\n\t- commit '%s' with key '%s'", commit.Hash, signer)
	}
	return msg.String(), nil
}

// tagObject returns the annotated tag a tag ref points at, or nil for a
// lightweight tag, with the tag's name.
func tagObject(repo *git.Repository, name plumbing.ReferenceName) (*object.Tag, string, error) {
	ref, err := repo.Reference(name, false)
	if err != nil {
		return nil, name.Short(), fmt.Errorf("unable to find reference for tag '%s': %w", name.Short(), err)
	}
	tag, err := repo.TagObject(ref.Hash())
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, name.Short(), nil
	}
	if err != nil {
		return nil, name.Short(), fmt.Errorf("unable to resolve tag object for tag '%s' with hash '%s': %w", name.Short(), ref.Hash(), err)
	}
	return tag, name.Short(), nil
}

// requiresVerification reports whether the stored artifact was not
// verified the way the spec now asks, as Flux decides it: never verified,
// or verified for the tag only (or the commit only) where the other is
// now asked too.
func requiresVerification(obj *sourcev1.GitRepository) bool {
	v := obj.Spec.Verification
	if v == nil {
		return false
	}
	observed := obj.Status.SourceVerificationMode
	if observed == nil {
		return true
	}
	mode := v.GetMode()
	return (*observed == sourcev1.ModeGitTag && mode != sourcev1.ModeGitTag) ||
		(*observed == sourcev1.ModeGitHEAD && mode != sourcev1.ModeGitHEAD)
}

// clearVerification drops the verification status of an object that no
// longer asks for it, and a failed one that is about to be checked again.
func clearVerification(obj *sourcev1.GitRepository) {
	if obj.Spec.Verification == nil {
		obj.Status.SourceVerificationMode = nil
		conditions.Delete(obj, sourcev1.SourceVerifiedCondition)
		return
	}
	if conditions.IsFalse(obj, sourcev1.SourceVerifiedCondition) {
		conditions.Delete(obj, sourcev1.SourceVerifiedCondition)
	}
}

// markVerified records a passed verification.
func markVerified(obj *sourcev1.GitRepository, msg string) {
	mode := obj.Spec.Verification.GetMode()
	obj.Status.SourceVerificationMode = &mode
	conditions.MarkTrue(obj, sourcev1.SourceVerifiedCondition, meta.SucceededReason, "%s", msg)
}

// refuse records a failed verification: SourceVerified=False and Ready=False
// with Flux's reason. Nothing is stored; the previous artifact, if any, is
// kept and still served.
func (r *Reconciler) refuse(obj *sourcev1.GitRepository, f *verificationFailure) (ctrl.Result, error) {
	msg := f.err.Error()
	conditions.Delete(obj, sourcev1.FetchFailedCondition)
	conditions.MarkFalse(obj, sourcev1.SourceVerifiedCondition, f.reason, "%s", msg)
	conditions.MarkFalse(obj, meta.ReadyCondition, f.reason, "%s", msg)
	if obj.Status.Artifact != nil && r.Store.Has(obj.Status.Artifact) {
		conditions.MarkTrue(obj, sourcev1.ArtifactInStorageCondition, meta.SucceededReason,
			"stored artifact for revision '%s'", obj.Status.Artifact.Revision)
	}
	r.Recorder.Event(obj, corev1.EventTypeWarning, f.reason, msg)
	if f.stall {
		conditions.Delete(obj, meta.ReconcilingCondition)
		conditions.MarkStalled(obj, f.reason, "%s", msg)
		return ctrl.Result{}, &lifecycle.StalledError{Err: f.err}
	}
	conditions.MarkReconciling(obj, meta.ProgressingWithRetryReason, "%s", msg)
	conditions.Delete(obj, meta.StalledCondition)
	return ctrl.Result{}, f.err
}
