package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/repo"
)

// offlineOptions say how the offline commands (build ks, build hr) pick a
// Kustomization in the repository and where its values come from.
type offlineOptions struct {
	kustomizationFile string // the file declaring the Kustomization
	cluster           string // the cluster (sync root) to read values from
	strict            bool   // fail instead of leaving variables as written
	ageKeyFile        string // age keys to decrypt SOPS-encrypted values
}

// addOfflineFlags binds the flags of offline, kustomizationFile adding
// --kustomization-file.
func addOfflineFlags(cmd *cobra.Command, o *offlineOptions, kustomizationFile bool) {
	if kustomizationFile {
		cmd.Flags().StringVar(&o.kustomizationFile, "kustomization-file", "", "the file that declares the Kustomization, to choose between same-named ones (as flux build ks)")
	}
	cmd.Flags().StringVar(&o.cluster, "cluster", "", "the cluster whose values to use, by name (main) or sync root folder (kubernetes/clusters/main), when several apply the object")
	cmd.Flags().BoolVar(&o.strict, "strict", false, "fail when a substituteFrom source is not in the repository, encrypted with no key, or ambiguous, instead of leaving its variables as written")
	cmd.Flags().StringVar(&o.ageKeyFile, "age-key-file", "", "age key file to decrypt SOPS-encrypted ConfigMaps and Secrets read for values (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY)")
}

// ageKeys reads the age keys given by --age-key-file, SOPS_AGE_KEY_FILE or
// SOPS_AGE_KEY (as sops does), nil when none is.
func (o offlineOptions) ageKeys() (*render.AgeKeys, error) {
	file, from := o.ageKeyFile, "--age-key-file"
	if file == "" {
		file, from = os.Getenv("SOPS_AGE_KEY_FILE"), "$SOPS_AGE_KEY_FILE"
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the age keys of %s: %w", from, err)
		}
		return render.ParseAgeKeys(string(b), from+" "+file)
	}
	if k := os.Getenv("SOPS_AGE_KEY"); k != "" {
		return render.ParseAgeKeys(k, "$SOPS_AGE_KEY")
	}
	return nil, nil
}

// kustomizationFileRel is --kustomization-file relative to the
// repository root.
func (o offlineOptions) kustomizationFileRel(r *repo.Repository) (string, error) {
	if o.kustomizationFile == "" {
		return "", nil
	}
	if _, err := os.Stat(o.kustomizationFile); err != nil {
		return "", fmt.Errorf("--kustomization-file: %w", err)
	}
	rel, ok := r.Rel(o.kustomizationFile)
	if !ok {
		return "", fmt.Errorf("--kustomization-file %s is not inside the repository %s", o.kustomizationFile, r.Root())
	}
	return rel, nil
}

// warnUnresolved tells, on w, what an offline render left as written.
func warnUnresolved(w io.Writer, report *render.Report) {
	for _, u := range report.Unavailable {
		fmt.Fprintf(w, "⚠ postBuild.substituteFrom %s: its variables are left as written\n", u)
	}
	if len(report.Unresolved) > 0 {
		fmt.Fprintf(w, "⚠ unresolved variables, left as written: %s\n", strings.Join(report.Unresolved, ", "))
	}
}
