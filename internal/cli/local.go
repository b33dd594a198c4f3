package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/localcluster"
)

func newLocalCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run a real Kubernetes control plane on this machine",
		Long: "local starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (simulated\n" +
			"nodes) as processes on loopback ports. The state folder keeps certificates, the kubeconfig and\n" +
			"etcd's data, so that starting again on it resumes the same cluster.",
	}
	cmd.AddCommand(newLocalStartCommand(), newLocalStopCommand(), newLocalStatusCommand(), newLocalRunCommand())
	return cmd
}

type localFlags struct {
	stateDir string
	nodes    int
	binDir   string
}

func (f *localFlags) register(cmd *cobra.Command, withNodes bool) {
	cmd.Flags().StringVar(&f.stateDir, "state-dir", ".weir/local", "folder that holds the cluster's state")
	if withNodes {
		cmd.Flags().IntVar(&f.nodes, "nodes", 1, "number of simulated nodes")
		cmd.Flags().StringVar(&f.binDir, "bin-dir", "", "folder of the control plane binaries (default: $"+localcluster.BinDirEnv+" or .cache/controlplane/bin)")
	}
}

func newLocalStartCommand() *cobra.Command {
	f := &localFlags{}
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start a local control plane in the background",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the weir executable: %w", err)
			}
			opts := localcluster.Options{StateDir: f.stateDir, Nodes: f.nodes, BinDir: f.binDir}
			if err := localcluster.StartDetached(cmd.Context(), exe, opts); err != nil {
				return err
			}
			kc := localcluster.KubeconfigPath(mustAbs(f.stateDir))
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "✔ local control plane ready (kubernetes %s, %d node(s))\n", localcluster.KubernetesVersion, f.nodes)
			fmt.Fprintf(out, "kubeconfig: %s\n", kc)
			fmt.Fprintf(out, "export KUBECONFIG=%s\n", kc)
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newLocalRunCommand() *cobra.Command {
	f := &localFlags{}
	cmd := &cobra.Command{
		Use:    "run",
		Short:  "Run a local control plane in the foreground until interrupted",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return localcluster.Serve(cmd.Context(), localcluster.Options{StateDir: f.stateDir, Nodes: f.nodes, BinDir: f.binDir})
		},
	}
	f.register(cmd, true)
	return cmd
}

func newLocalStopCommand() *cobra.Command {
	f := &localFlags{}
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the local control plane of a state folder",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := localcluster.StopDetached(cmd.Context(), f.stateDir)
			if errors.Is(err, localcluster.ErrNotRunning) {
				fmt.Fprintln(cmd.OutOrStdout(), "no local control plane was running in", f.stateDir)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "✔ local control plane stopped; its data stays in", f.stateDir)
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func newLocalStatusCommand() *cobra.Command {
	f := &localFlags{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the local control plane of a state folder runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := localcluster.ReadStatus(f.stateDir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !st.Running {
				fmt.Fprintln(out, "stopped")
				return exitError{code: 3}
			}
			fmt.Fprintf(out, "running: %s\n", st.Server)
			for _, name := range localcluster.Components() {
				state := "running"
				if !st.Components[name] {
					state = "not running"
				}
				fmt.Fprintf(out, "  %-24s %s\n", name, state)
			}
			fmt.Fprintf(out, "export KUBECONFIG=%s\n", st.Kubeconfig)
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}
