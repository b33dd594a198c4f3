package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubernetesVersion is the version of the control plane binaries that
// tools/controlplane builds.
const KubernetesVersion = "v1.37.2"

// Options configure a local cluster.
type Options struct {
	// StateDir holds certificates, the kubeconfig, logs and etcd's data.
	// Starting again on the same folder resumes the same cluster.
	StateDir string
	// Nodes is the number of simulated (kwok) nodes; 0 means 1.
	Nodes int
	// BinDir holds the binaries; empty means BinDir().
	BinDir string
	// ExtraStages are kwok stage files added to the default fast lifecycle,
	// such as kwok's chaos stages that make containers fail.
	ExtraStages []string
	// EtcdMaxRequestBytes is the largest request etcd accepts, and so the
	// largest object it stores; 0 means etcd's default, 1.5 MiB.
	EtcdMaxRequestBytes int
	// NoNodes starts etcd, the API server and the controller manager
	// only (it makes the service accounts that admission of Pods needs):
	// no scheduler, no kwok, no nodes. Such a cluster stores and checks
	// objects and runs nothing, as a dry run needs, and starts sooner.
	NoNodes bool
}

// Cluster is a running local control plane.
type Cluster struct {
	// StateDir is the cluster's state folder.
	StateDir string
	// Kubeconfig is the path of the admin kubeconfig.
	Kubeconfig string
	// Server is the API server URL.
	Server string

	procs []*process
	rest  *rest.Config
	// ready checks, by component, that a restarted component serves again.
	ready map[string]func(context.Context) error
}

// KubeconfigPath returns where the admin kubeconfig of the cluster in
// stateDir is written.
func KubeconfigPath(stateDir string) string {
	return filepath.Join(stateDir, "kubeconfig")
}

// Start starts a control plane in opts.StateDir and returns once the API
// server is ready and every node is registered. On error nothing is left
// running.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.StateDir == "" {
		return nil, errors.New("a state folder is required")
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("resolving the state folder: %w", err)
	}
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	bin := opts.BinDir
	if bin == "" {
		if bin, err = BinDir(); err != nil {
			return nil, err
		}
	} else if err := checkBinDir(bin); err != nil {
		return nil, err
	}
	if pid, ok := readPID(stateDir, supervisor); ok && pid != os.Getpid() {
		return nil, fmt.Errorf("a local cluster already runs in %s (pid %d): stop it first with `weir local stop --state-dir %s`", stateDir, pid, opts.StateDir)
	}
	sec := secrets{dir: stateDir}
	if err := sec.ensure(); err != nil {
		return nil, err
	}
	KillLeftovers(stateDir)

	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	etcdPort, etcdPeerPort, apiPort, kwokPort := ports[0], ports[1], ports[2], ports[3]
	c := &Cluster{
		StateDir:   stateDir,
		Kubeconfig: KubeconfigPath(stateDir),
		Server:     "https://127.0.0.1:" + strconv.Itoa(apiPort),
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	token, err := sec.token()
	if err != nil {
		return nil, err
	}
	if err := c.writeKubeconfig(sec, token); err != nil {
		return nil, err
	}

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	etcdArgs := []string{"--data-dir", filepath.Join(stateDir, "etcd"),
		"--name", "weir-local",
		"--listen-client-urls", etcdURL,
		"--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:" + strconv.Itoa(etcdPeerPort),
		"--initial-advertise-peer-urls", "http://127.0.0.1:" + strconv.Itoa(etcdPeerPort),
		"--initial-cluster", "weir-local=http://127.0.0.1:" + strconv.Itoa(etcdPeerPort),
		"--unsafe-no-fsync",
		"--log-level", "warn",
	}
	if opts.EtcdMaxRequestBytes > 0 {
		etcdArgs = append(etcdArgs, "--max-request-bytes", strconv.Itoa(opts.EtcdMaxRequestBytes))
	}
	if err := c.run(bin, "etcd", etcdArgs...); err != nil {
		return nil, err
	}
	c.ready = map[string]func(context.Context) error{
		"etcd": func(ctx context.Context) error {
			return c.waitHTTP(ctx, "etcd", etcdURL+"/health", nil, 30*time.Second)
		},
	}
	if err := c.ready["etcd"](ctx); err != nil {
		return nil, err
	}

	if err := c.run(bin, "kube-apiserver",
		"--etcd-servers", etcdURL,
		"--secure-port", strconv.Itoa(apiPort),
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--endpoint-reconciler-type", "none",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", sec.path("sa.pub"),
		"--service-account-signing-key-file", sec.path("sa.key"),
		"--cert-dir", filepath.Join(stateDir, "pki"),
		"--tls-cert-file", sec.path("apiserver.crt"),
		"--tls-private-key-file", sec.path("apiserver.key"),
		"--client-ca-file", sec.path("ca.crt"),
		"--token-auth-file", sec.path("tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--allow-privileged=true",
		"--profiling=false",
		"--enable-priority-and-fairness=false",
	); err != nil {
		return nil, err
	}
	tlsConfig, err := sec.clientTLS()
	if err != nil {
		return nil, err
	}
	c.ready["kube-apiserver"] = func(ctx context.Context) error {
		return c.waitHTTP(ctx, "kube-apiserver", c.Server+"/readyz", &clientAuth{tls: tlsConfig, token: token}, 60*time.Second)
	}
	if err := c.ready["kube-apiserver"](ctx); err != nil {
		return nil, err
	}

	common := []string{"--kubeconfig", c.Kubeconfig, "--authentication-kubeconfig", c.Kubeconfig, "--authorization-kubeconfig", c.Kubeconfig, "--leader-elect=false", "--secure-port", "0"}
	if err := c.run(bin, "kube-controller-manager", append(common,
		"--service-account-private-key-file", sec.path("sa.key"),
		"--root-ca-file", sec.path("ca.crt"),
		"--controllers", "*,-nodeipam,-persistentvolume-binder,-attachdetach",
		"--concurrent-deployment-syncs", "10",
		"--concurrent-replicaset-syncs", "10",
	)...); err != nil {
		return nil, err
	}
	if opts.NoNodes {
		if err := c.loadRESTConfig(); err != nil {
			return nil, err
		}
		if err := c.checkAlive(); err != nil {
			return nil, err
		}
		return c, nil
	}
	if err := c.run(bin, "kube-scheduler", common...); err != nil {
		return nil, err
	}
	stages := filepath.Join(bin, stagesFile)
	kwokArgs := []string{"--kubeconfig", c.Kubeconfig, "--manage-all-nodes=true", "--config", stages,
		"--server-address", "127.0.0.1:" + strconv.Itoa(kwokPort)}
	if chaos := filepath.Join(bin, chaosStagesFile); fileExists(chaos) {
		kwokArgs = append(kwokArgs, "--config", chaos)
	}
	again := filepath.Join(c.StateDir, "kwok-pod-ready-again.yaml")
	if err := os.WriteFile(again, podReadyAgain, 0o644); err != nil {
		return nil, fmt.Errorf("writing kwok's stages: %w", err)
	}
	kwokArgs = append(kwokArgs, "--config", again)
	for _, s := range opts.ExtraStages {
		kwokArgs = append(kwokArgs, "--config", s)
	}
	if err := c.run(bin, "kwok", kwokArgs...); err != nil {
		return nil, err
	}

	if err := c.loadRESTConfig(); err != nil {
		return nil, err
	}
	cfg := c.rest
	kwokLog := func() string { return tail(c.StateDir, "kwok", 15) }
	kwokRestarts := 0
	alive := func() error {
		// kwok v0.8 sets its stages up lazily from several goroutines at
		// once and was seen to crash on it at start-up (a data race in
		// kwok): it is started again, a few times, before giving up.
		if p := c.component("kwok"); p != nil && p.exited() && kwokRestarts < kwokStartRetries {
			kwokRestarts++
			if err := c.StartComponent(ctx, "kwok"); err != nil {
				return err
			}
		}
		return c.checkAlive()
	}
	if err := registerNodes(ctx, cfg, opts.Nodes, alive, kwokLog); err != nil {
		return nil, err
	}
	if err := alive(); err != nil {
		return nil, err
	}
	return c, nil
}

// loadRESTConfig loads the admin client configuration the cluster wrote.
func (c *Cluster) loadRESTConfig() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading the local kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	c.rest = cfg
	return nil
}

// RESTConfig returns a client configuration with admin rights.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Stop ends every component, the API server's clients first and etcd last,
// and waits for them to exit.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(c.StateDir, 10*time.Second)
	}
	c.procs = nil
}

// StopComponent ends one component (SIGTERM, or SIGKILL when kill is set,
// as a crash would) and leaves the others running: a test or a user sees
// how the rest of the system lives through its loss. StartComponent brings
// it back.
func (c *Cluster) StopComponent(name string, kill bool) error {
	p := c.component(name)
	if p == nil {
		return fmt.Errorf("the local control plane has no component %q (it has %s)", name, strings.Join(Components(), ", "))
	}
	if kill && !p.exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.stop(c.StateDir, 10*time.Second)
	return nil
}

// StartComponent starts again a component that StopComponent ended (or
// that exited), with the same flags and ports, and waits until it serves
// when it is etcd or the API server. A component that runs is left alone.
func (c *Cluster) StartComponent(ctx context.Context, name string) error {
	for i, p := range c.procs {
		if p.name != name {
			continue
		}
		if !p.exited() {
			return nil
		}
		np, err := startProcess(c.StateDir, p.name, p.bin, p.args)
		if err != nil {
			return err
		}
		c.procs[i] = np
		if ready := c.ready[name]; ready != nil {
			return ready(ctx)
		}
		return nil
	}
	return fmt.Errorf("the local control plane has no component %q (it has %s)", name, strings.Join(Components(), ", "))
}

// kwokStartRetries is how many times Start starts kwok again when it
// exits while the nodes register.
const kwokStartRetries = 3

// restartLimit is how many times in restartWindow Supervise starts a
// component again before it gives up on it.
const (
	restartLimit  = 5
	restartWindow = 5 * time.Minute
)

// Supervise keeps the components running until ctx ends, as a kubelet
// keeps static pods: a component that exits is started again alone, with
// the same flags, ports and data, and logf is told. A component that
// exits more than 5 times in 5 minutes is crash-looping: Supervise returns
// an error with the end of its log, and the caller stops the cluster.
func (c *Cluster) Supervise(ctx context.Context, logf func(format string, args ...any)) error {
	exits := map[string][]time.Time{}
	for {
		var name string
		select {
		case <-ctx.Done():
			return nil
		case name = <-c.Done():
		}
		if ctx.Err() != nil {
			return nil
		}
		p := c.component(name)
		if p == nil || !p.exited() {
			continue
		}
		now := time.Now()
		recent := []time.Time{now}
		for _, at := range exits[name] {
			if now.Sub(at) < restartWindow {
				recent = append(recent, at)
			}
		}
		exits[name] = recent
		if len(recent) > restartLimit {
			return fmt.Errorf("%s exited %d times in %s; last lines of its log:\n%s", name, len(recent), restartWindow, tail(c.StateDir, name, 15))
		}
		logf("%s exited (%v); starting it again", name, p.err)
		if err := c.StartComponent(ctx, name); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			logf("starting %s again failed: %v", name, err)
		}
	}
}

func (c *Cluster) component(name string) *process {
	for _, p := range c.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// Done returns a channel that is closed when any component exits, and the
// name of that component once it has. It watches the processes that run
// when it is called: a component restarted later is not watched.
func (c *Cluster) Done() <-chan string {
	ch := make(chan string, 1)
	procs := c.procs
	go func() {
		cases := make(chan string, len(procs))
		for _, p := range procs {
			go func() {
				<-p.done
				cases <- p.name
			}()
		}
		ch <- <-cases
		close(ch)
	}()
	return ch
}

func (c *Cluster) run(bin, name string, args ...string) error {
	p, err := startProcess(c.StateDir, name, filepath.Join(bin, name), args)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}

// checkAlive reports a component that exited during start-up, with the end
// of its log.
func (c *Cluster) checkAlive() error {
	for _, p := range c.procs {
		if p.exited() {
			return fmt.Errorf("%s exited during start-up (%v); last lines of %s:\n%s",
				p.name, p.err, filepath.Join(c.StateDir, "logs", p.name+".log"), tail(c.StateDir, p.name, 15))
		}
	}
	return nil
}

type clientAuth struct {
	tls   *tls.Config
	token string
}

// waitHTTP polls url until it answers 200, a component dies, or timeout.
func (c *Cluster) waitHTTP(ctx context.Context, name, url string, auth *clientAuth, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	if auth != nil {
		client.Transport = &http.Transport{TLSClientConfig: auth.tls}
	}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if err := c.checkAlive(); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("checking %s: %w", name, err)
		}
		if auth != nil {
			req.Header.Set("Authorization", "Bearer "+auth.token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready after %s (%s); last lines of its log:\n%s", name, timeout, last, tail(c.StateDir, name, 15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) writeKubeconfig(sec secrets, token string) error {
	ca, err := os.ReadFile(sec.path("ca.crt"))
	if err != nil {
		return fmt.Errorf("reading the cluster CA: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["weir-local"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["weir-local"] = &clientcmdapi.Context{Cluster: "weir-local", AuthInfo: "admin"}
	cfg.CurrentContext = "weir-local"
	if err := clientcmd.WriteToFile(*cfg, c.Kubeconfig); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return os.Chmod(c.Kubeconfig, 0o600)
}

func (s secrets) token() (string, error) {
	b, err := os.ReadFile(s.path("tokens.csv"))
	if err != nil {
		return "", fmt.Errorf("reading the admin token: %w", err)
	}
	tok, _, _ := strings.Cut(string(b), ",")
	return tok, nil
}

func (s secrets) clientTLS() (*tls.Config, error) {
	ca, err := os.ReadFile(s.path("ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("reading the cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the cluster CA in the state folder is not a PEM certificate")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
