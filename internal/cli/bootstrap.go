package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/bootstrap"
	"github.com/weirhq/weir/internal/install"
)

func newBootstrapCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Make a cluster sync itself from a Git repository with weir",
	}
	cmd.AddCommand(newBootstrapGitCommand(g))
	return cmd
}

func newBootstrapGitCommand(g *globalOptions) *cobra.Command {
	var o bootstrap.Options
	cmd := &cobra.Command{
		Use:   "git",
		Short: "Install weir and sync the cluster from a Git repository (ssh or https)",
		Long: "bootstrap git makes the cluster sync itself from a Git repository, as `flux bootstrap git` does,\n" +
			"without writing to the repository: it installs Flux's CRDs and weir, stores the Git credentials\n" +
			"(for SSH, the deploy key and the server's host key, read from it; for HTTPS, --username and\n" +
			"--password or $WEIR_GIT_PASSWORD) and the sops-age Secret, applies a FluxInstance that syncs\n" +
			"--path of --branch (or, with --no-instance, a GitRepository and a Kustomization), and waits for\n" +
			"the first sync. With --generate-key it makes a deploy key and prints its public half to add to\n" +
			"the Git host. Running it again with the same flags changes nothing, and says so.",
		Example: "  weir bootstrap git --url ssh://git@github.com/me/home-ops.git --branch main \\\n" +
			"    --path kubernetes/flux/cluster --generate-key --sops-age-key-file age.key",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("namespace") {
				o.Install.Namespace = g.namespace
			}
			if o.Password == "" {
				o.Password = os.Getenv("WEIR_GIT_PASSWORD")
			}
			if o.PrivateKeyFile != "" && o.GenerateKey {
				return fmt.Errorf("give --private-key-file or --generate-key, not both")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
			res, err := bootstrap.Run(cmd.Context(), c, o, say)
			if err != nil {
				return err
			}
			if len(res.Changed) == 0 {
				fmt.Fprintln(out, "✔ bootstrap finished: nothing changed")
			} else {
				fmt.Fprintf(out, "✔ bootstrap finished: %d objects changed\n", len(res.Changed))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "", "the Git repository: ssh://git@host/owner/repo.git, git@host:owner/repo.git or https://host/owner/repo.git")
	f.StringVar(&o.Branch, "branch", "main", "the branch to sync")
	f.StringVar(&o.Path, "path", "", "the folder of the repository that holds the cluster's sync root, such as kubernetes/flux/cluster")
	f.StringVar(&o.SecretName, "secret-name", "flux-system", "the Secret that holds the Git credentials (spec.sync.pullSecret)")
	f.StringVar(&o.PrivateKeyFile, "private-key-file", "", "SSH private key to use as the deploy key (no passphrase)")
	f.BoolVar(&o.GenerateKey, "generate-key", false, "make an ed25519 deploy key when the Secret holds none, and print its public key")
	f.StringVarP(&o.Username, "username", "u", "git", "username for HTTPS")
	f.StringVarP(&o.Password, "password", "p", "", "password or token for HTTPS (default $WEIR_GIT_PASSWORD, which stays out of the process list)")
	f.StringVar(&o.SOPSAgeKeyFile, "sops-age-key-file", "", "age key file stored as the Secret sops-age (key age.agekey) for SOPS decryption")
	f.BoolVar(&o.NoInstance, "no-instance", false, "apply a GitRepository and a Kustomization instead of a FluxInstance")
	f.DurationVar(&o.Interval, "interval", time.Minute, "how often the source is fetched")
	f.StringVar(&o.Install.Image, "image", "", "weir's container image (default "+install.DefaultImage()+")")
	f.Int32Var(&o.Install.Replicas, "replicas", 1, "replicas of weir's Deployment; they elect a leader")
	f.BoolVar(&o.Install.LeastPrivilege, "least-privilege", false, "install weir without cluster-admin (see weir install)")
	f.StringVar(&o.Install.DefaultServiceAccount, "default-service-account", "", "with --least-privilege, the service account of objects that name none")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long to wait for weir to be Available and for the first sync")
	_ = cmd.MarkFlagRequired("url")
	_ = cmd.MarkFlagRequired("path")
	return cmd
}
