package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/daemon"
	"github.com/weirhq/weir/internal/localcluster"
	"github.com/weirhq/weir/internal/ui"
	"github.com/weirhq/weir/internal/up"
)

func newUpCommand() *cobra.Command {
	var (
		opts    up.Options
		dash    dashboardOptions
		watch   bool
		once    bool
		detach  bool
		serve   bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "up [PATH]",
		Short: "Run a repository on a local control plane, no cluster needed",
		Long: "up starts a real local control plane (etcd, kube-apiserver, controller-manager, scheduler and\n" +
			"simulated nodes), serves PATH (default: the current folder) from an in-process Git server, pushes\n" +
			"the Helm charts of --charts to an in-process OCI registry (its address is LOCAL_REGISTRY in the\n" +
			"ConfigMap flux-system/weir-up), runs weir's controllers and syncs PATH through a flux-system\n" +
			"GitRepository and, when PATH has a root (kubernetes/flux/cluster, clusters/<name> or --path), a\n" +
			"flux-system Kustomization of it. Edits in PATH are picked up while it runs (--watch). The state\n" +
			"under PATH/.weir is kept, so the next run resumes. --detach leaves it running in the background\n" +
			"once the sync is created; `weir down PATH` stops it.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = "."
			if len(args) == 1 {
				opts.Path = args[0]
			}
			if !cmd.Flags().Changed("age-key-file") {
				opts.AgeKeyFile = defaultAgeKeyFile(opts.Path)
			}
			if opts.StateDir == "" {
				opts.StateDir = filepath.Join(opts.Path, ".weir")
			}
			opts.StateDir = mustAbs(opts.StateDir)
			switch {
			case detach && once:
				return errors.New("--detach and --once do not go together: --once stops everything once Ready")
			case detach:
				return runUpDetached(cmd, opts, dash, watch, timeout)
			case serve:
				return serveUpDetached(cmd, opts, dash, watch, timeout)
			}
			if once {
				dash.addr = "0"
			}
			// Recorded as the detached run records itself, so that `weir
			// check` and `weir down` find a foreground run too.
			p := upProcess(opts.StateDir)
			p.RecordPID(os.Getpid())
			defer p.RemovePID()
			return runUp(cmd, opts, dash, watch && !once, once, timeout, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.StateDir, "state-dir", "", "folder for the cluster's state, artifacts and logs (default: PATH/.weir)")
	f.IntVar(&opts.Nodes, "nodes", 1, "number of simulated nodes")
	f.BoolVar(&watch, "watch", true, "commit edits in PATH to the local Git server and reconcile them")
	f.StringVar(&opts.RootPath, "path", "", "path of the root Kustomization in PATH (default: found by convention)")
	f.StringVar(&opts.Charts, "charts", "", "folder of Helm chart folders to push to the local OCI registry (default: PATH/charts, else ../charts beside PATH, when there)")
	f.StringVar(&opts.ReceiverAddr, "receiver-addr", "", "address of the webhook receiver (default: a free port on 127.0.0.1); 0 turns it off")
	f.StringVar(&opts.AgeKeyFile, "age-key-file", "", "age key file for the flux-system/sops-age Secret (default: PATH/age.key, else $SOPS_AGE_KEY_FILE)")
	f.BoolVar(&once, "once", false, "stop everything and exit once every Kustomization is Ready")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for every Kustomization to be Ready")
	f.StringVar(&dash.addr, "ui-addr", defaultUIAddr, "address of the dashboard; 0 turns it off; another port is taken when this one is in use")
	f.StringVar(&dash.token, "ui-token", os.Getenv("WEIR_UI_TOKEN"), "token the dashboard requires (needed when --ui-addr is not loopback; default $WEIR_UI_TOKEN)")
	f.BoolVar(&detach, "detach", false, "run in the background and return once the sync is created; stop it with `weir down PATH`")
	f.BoolVar(&serve, "serve-detached", false, "run as the background process of --detach")
	_ = f.MarkHidden("serve-detached")
	return cmd
}

// downCommand is the command that stops the background run of opts:
// --state-dir is named when it is not the default, so that the command
// works whatever the records say.
func downCommand(opts up.Options) string {
	if opts.StateDir == mustAbs(filepath.Join(opts.Path, ".weir")) {
		return "weir down " + opts.Path
	}
	return fmt.Sprintf("weir down %s --state-dir %s", opts.Path, opts.StateDir)
}

// upProcess is the background process of `weir up --detach` for a state
// folder.
func upProcess(stateDir string) daemon.Process {
	return daemon.Process{Dir: stateDir, Name: "weir-up"}
}

// runUpDetached starts `weir up` in the background with the same options
// and returns once it has created the sync, printing how to reach it.
func runUpDetached(cmd *cobra.Command, opts up.Options, dash dashboardOptions, watch bool, timeout time.Duration) error {
	p := upProcess(opts.StateDir)
	if pid, ok := p.PID(); ok {
		return fmt.Errorf("weir up already runs for %s (pid %d): `%s` stops it", opts.Path, pid, downCommand(opts))
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the weir executable: %w", err)
	}
	args := []string{"up", mustAbs(opts.Path), "--serve-detached", "--state-dir", opts.StateDir,
		"--nodes", strconv.Itoa(opts.Nodes), "--watch=" + strconv.FormatBool(watch), "--timeout", timeout.String(),
		"--age-key-file", opts.AgeKeyFile, "--ui-addr", dash.addr}
	if opts.RootPath != "" {
		args = append(args, "--path", opts.RootPath)
	}
	if opts.Charts != "" {
		args = append(args, "--charts", mustAbs(opts.Charts))
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "► starting weir up for %s in the background (log: %s)\n", opts.Path, p.LogFile())
	ready, err := p.Start(cmd.Context(), exe, args)
	if err != nil {
		return fmt.Errorf("weir up did not start: %w", err)
	}
	kubeconfig, dashboardURL, _ := strings.Cut(ready, "\n")
	pid, _ := p.PID()
	fmt.Fprintf(out, "✔ local control plane running and sync created (pid %d)\n", pid)
	if dashboardURL != "" {
		fmt.Fprintf(out, "dashboard: %s\n", dashboardURL)
	}
	fmt.Fprintf(out, "kubeconfig: %s\n", kubeconfig)
	fmt.Fprintf(out, "export KUBECONFIG=%s\n", kubeconfig)
	fmt.Fprintf(out, "stop it with: %s\n", downCommand(opts))
	return nil
}

// serveUpDetached is the body of the background process: weir up as in
// the foreground, telling the command that started it when the sync is
// created (or that the start failed), its output going to its log.
func serveUpDetached(cmd *cobra.Command, opts up.Options, dash dashboardOptions, watch bool, timeout time.Duration) error {
	p := upProcess(opts.StateDir)
	p.RecordPID(os.Getpid())
	defer p.RemovePID()
	defer p.ClearMarks()
	path := mustAbs(opts.Path)
	if err := up.RecordRun(up.Run{Path: path, StateDir: opts.StateDir, PID: os.Getpid()}); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v; `weir down` will need --state-dir %s\n", err, opts.StateDir)
	}
	defer up.ForgetRun(path, opts.StateDir)
	err := runUp(cmd, opts, dash, watch, false, timeout, func(s *up.Session, dashboardURL string) {
		_ = p.MarkReady(s.Kubeconfig + "\n" + dashboardURL)
	})
	if err != nil {
		_ = p.MarkFailed(err)
	}
	return err
}

func newDownCommand() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "down [PATH]",
		Short: "Stop what `weir up --detach` runs for PATH",
		Long: "down stops the background `weir up` of PATH (default: the current folder): the one of --state-dir\n" +
			"when given, else the one whose state is PATH/.weir, else the one recorded for PATH when it was\n" +
			"started with another --state-dir. It stops the controllers, the Git server, the registry and the\n" +
			"local control plane, and waits until none of their processes is left. The state folder stays, so\n" +
			"the next `weir up` resumes. It exits 1 when nothing of PATH's was running.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "."
			if len(args) == 1 {
				path = args[0]
			}
			dirs := downStateDirs(mustAbs(path), stateDir)
			stopped := false
			for _, dir := range dirs {
				ran, err := upProcess(dir).Stop(cmd.Context(), time.Minute)
				if err != nil {
					return err
				}
				// The control plane's processes die with weir up; any left by
				// a kill -9 are ended here.
				left := localcluster.KillLeftovers(filepath.Join(dir, "cluster"))
				up.ForgetRun(mustAbs(path), dir)
				if ran || left > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "✔ stopped weir up for %s; its state stays in %s\n", path, dir)
					stopped = true
				}
			}
			if !stopped {
				return fmt.Errorf("weir up was not running for %s (looked in %s)", path, strings.Join(dirs, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "state folder of the weir up to stop (default: PATH/.weir, else the one PATH's run was started with)")
	return cmd
}

// downStateDirs lists the state folders `weir down` stops for the
// repository folder path (absolute): --state-dir alone when given, else
// PATH/.weir and the state folder recorded for PATH's background run.
func downStateDirs(path, stateDir string) []string {
	if stateDir != "" {
		return []string{mustAbs(stateDir)}
	}
	dirs := []string{filepath.Join(path, ".weir")}
	if r, ok := up.FindRun(path); ok && r.StateDir != dirs[0] {
		dirs = append(dirs, r.StateDir)
	}
	return dirs
}

// runUp runs weir up in the foreground; started, when set, is called once
// the sync is created.
func runUp(cmd *cobra.Command, opts up.Options, dash dashboardOptions, watch, once bool, timeout time.Duration, started func(s *up.Session, dashboardURL string)) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	start := time.Now()
	fmt.Fprintf(out, "► starting a local control plane (kubernetes %s) and weir's controllers\n", localcluster.KubernetesVersion)
	s, err := up.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "► stopping")
		s.Stop()
	}()
	dashboardURL, stopDashboard, err := startDashboard(ctx, s, dash)
	if err != nil {
		return err
	}
	defer stopDashboard()
	if started != nil {
		started(s, dashboardURL)
	}
	fmt.Fprintf(out, "✔ control plane ready; serving %s at %s\n", opts.Path, s.RepoURL)
	if dashboardURL != "" {
		fmt.Fprintf(out, "✔ dashboard at %s\n", dashboardURL)
	}
	if s.ReceiverURL != "" {
		fmt.Fprintf(out, "✔ webhook receiver at %s (a Receiver's URL is this and its status.webhookPath)\n", s.ReceiverURL)
	}
	fmt.Fprintf(out, "✔ OCI registry at %s (%s in ConfigMap %s/%s)%s\n", s.RegistryHost, up.RegistryKey, up.SourceName, up.RegistryConfigMapName, describeCharts(s))
	fmt.Fprintf(out, "◎ waiting for GitRepository %s/%s\n", up.SourceName, up.SourceName)
	obj, err := s.WaitReady(ctx, timeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "✔ fetched revision %s in %s\n", obj.Status.Artifact.Revision, time.Since(start).Round(100*time.Millisecond))
	var all *up.Converged
	if s.RootPath != "" {
		fmt.Fprintf(out, "◎ applying %s and every Kustomization and HelmRelease it brings\n", s.RootPath)
		pctx, stopProgress := context.WithCancel(ctx)
		shown := make(chan struct{})
		go func() {
			defer close(shown)
			newProgress(out, start).follow(pctx, s, 250*time.Millisecond)
		}()
		all, err = s.WaitAllReady(ctx, timeout)
		stopProgress()
		<-shown
		if err != nil {
			if once || ctx.Err() != nil {
				return err
			}
			// Keep running: the user may fix the repository while it
			// watches, and the rest of the graph stays up.
			fmt.Fprintf(out, "✗ %v\n", err)
		} else {
			fmt.Fprintf(out, "✔ %s Ready in %s\n", describeConverged(all), time.Since(start).Round(100*time.Millisecond))
		}
	}
	fmt.Fprintln(out)
	if err := printTable(ctx, cmd, s.Kubeconfig, "sources", "git"); err != nil {
		return err
	}
	if s.RootPath != "" {
		fmt.Fprintln(out)
		if err := printTable(ctx, cmd, s.Kubeconfig, "kustomizations"); err != nil {
			return err
		}
		if all == nil || len(all.HelmReleases) > 0 {
			fmt.Fprintln(out)
			if err := printTable(ctx, cmd, s.Kubeconfig, "helmreleases"); err != nil {
				return err
			}
		}
	}
	if once {
		return nil
	}
	if dashboardURL != "" {
		fmt.Fprintf(out, "\ndashboard: %s", dashboardURL)
	}
	fmt.Fprintf(out, "\nexport KUBECONFIG=%s\n", s.Kubeconfig)
	if !watch {
		fmt.Fprintln(out, "running; Ctrl-C to stop")
		<-ctx.Done()
		return nil
	}
	fmt.Fprintf(out, "watching %s for changes; Ctrl-C to stop\n", opts.Path)
	return s.Watch(ctx, time.Second, func(h plumbing.Hash) {
		fmt.Fprintf(out, "► change committed as %s, reconciling\n", h.String()[:8])
	})
}

// describeConverged counts what WaitAllReady found Ready: "15
// Kustomizations and 13 HelmReleases", the HelmReleases left out when
// there are none.
func describeConverged(all *up.Converged) string {
	s := plural(len(all.Kustomizations), "Kustomization")
	if len(all.HelmReleases) > 0 {
		s += " and " + plural(len(all.HelmReleases), "HelmRelease")
	}
	return s
}

// plural is "1 Kustomization", "2 Kustomizations".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// describeCharts says which charts the session pushed, from where.
func describeCharts(s *up.Session) string {
	if len(s.Charts) == 0 {
		if s.ChartsDir == "" {
			return "; no charts folder"
		}
		return "; no charts in " + s.ChartsDir
	}
	names := make([]string, len(s.Charts))
	for i, c := range s.Charts {
		names[i] = c.Name + ":" + c.Version
	}
	return fmt.Sprintf("; pushed %s from %s", strings.Join(names, ", "), displayPath(s.ChartsDir))
}

// displayPath is p relative to the current folder when that is shorter.
func displayPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && len(rel) < len(p) {
		return rel
	}
	return p
}

// defaultAgeKeyFile is age.key in the repository folder when it exists,
// else the file SOPS itself reads keys from.
func defaultAgeKeyFile(path string) string {
	if f := filepath.Join(path, "age.key"); fileExists(f) {
		return f
	}
	return os.Getenv("SOPS_AGE_KEY_FILE")
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// printTable prints `weir get WHAT -A` for the local cluster.
func printTable(ctx context.Context, cmd *cobra.Command, kubeconfig string, what ...string) error {
	get := newRootCommand()
	get.SetOut(cmd.OutOrStdout())
	get.SetErr(cmd.ErrOrStderr())
	get.SetArgs(append(append([]string{"get"}, what...), "-A", "--kubeconfig", kubeconfig))
	return get.ExecuteContext(ctx)
}

// defaultUIAddr is where weir up serves its dashboard unless told otherwise.
const defaultUIAddr = "127.0.0.1:9292"

// dashboardOptions are weir up's dashboard flags.
type dashboardOptions struct {
	addr  string // "0" turns the dashboard off
	token string
}

// startDashboard serves the dashboard of the session's cluster until ctx
// ends or stop is called, and returns its URL ("" when turned off). When
// the default port is taken (another weir up), a free port is used.
func startDashboard(ctx context.Context, s *up.Session, o dashboardOptions) (string, func(), error) {
	if o.addr == "0" || o.addr == "" {
		return "", func() {}, nil
	}
	srv, err := ui.New(s.RESTConfig(), ui.Options{Addr: o.addr, Token: o.token})
	if err != nil && o.addr == defaultUIAddr {
		srv, err = ui.New(s.RESTConfig(), ui.Options{Addr: "127.0.0.1:0", Token: o.token})
	}
	if err != nil {
		return "", nil, fmt.Errorf("starting the dashboard: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(ctx)
	}()
	return srv.URL(), func() { cancel(); <-done }, nil
}
