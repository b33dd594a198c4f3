// Command bench measures weir on the local control plane: the time from
// creating the root Kustomization to every Kustomization Ready, for the
// example repository (the seed's 7-level chain) and for a generated
// repository of N independent apps, against the floor measured in the same
// run (one Deployment applied and turning Available, per level of the
// longest chain), with weir's peak RSS and CPU time.
//
//	go run ./bench                 # example graph, then 200 apps
//	go run ./bench -scaled 1000    # a larger scaled variant
//
// weir runs in this process, so the RSS and CPU figures include the small
// harness; the control plane runs in its own processes and is not counted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/up"
)

func main() {
	example := flag.String("example", "examples/cluster", "the example repository")
	scaled := flag.Int("scaled", 200, "number of apps in the scaled variant; 0 skips it")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of weir to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(*example, *scaled); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(example string, scaled int) error {
	ctx := context.Background()
	fmt.Println("| scenario | Kustomizations | levels | time to all Ready | floor | ratio to floor |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	repo, err := os.MkdirTemp("", "weir-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(repo)
	if err := os.CopyFS(repo, os.DirFS(example)); err != nil {
		return fmt.Errorf("copying %s: %w", example, err)
	}
	if err := measure(ctx, "example (seed chain)", repo, 7); err != nil {
		return err
	}
	if scaled > 0 {
		gen, err := os.MkdirTemp("", "weir-bench-scaled-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(gen)
		if err := generate(gen, scaled); err != nil {
			return err
		}
		if err := measure(ctx, fmt.Sprintf("%d independent apps", scaled), gen, 1); err != nil {
			return err
		}
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("\nweir (in-process, harness included): peak RSS %s, CPU %.1f s user + %.1f s system\n",
		peakRSS(), time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds())
	return nil
}

// measure runs one repository on a fresh control plane.
func measure(ctx context.Context, name, repo string, levels int) error {
	opts := up.Options{Path: repo, StateDir: filepath.Join(repo, ".weir")}
	if key := filepath.Join(repo, "age.key"); fileExists(key) {
		opts.AgeKeyFile = key
	}
	s, err := up.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Stop()
	floor, err := deploymentFloor(ctx, s.Client)
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err := s.WaitReady(ctx, 5*time.Minute); err != nil {
		return err
	}
	all, err := s.WaitAllReady(ctx, 30*time.Minute)
	if err != nil {
		return err
	}
	took := time.Since(start)
	total := floor * time.Duration(levels)
	fmt.Printf("| %s | %d | %d | %.2f s | %.2f s (%d × %.2f s) | %.1fx |\n", name, len(all), levels,
		took.Seconds(), total.Seconds(), levels, floor.Seconds(), took.Seconds()/total.Seconds())
	return nil
}

// deploymentFloor applies one Deployment and waits until it is Available:
// the least one level of a dependency chain can cost on this control plane.
func deploymentFloor(ctx context.Context, c client.Client) (time.Duration, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-floor"}}
	if err := c.Create(ctx, ns); err != nil {
		return 0, fmt.Errorf("creating the floor namespace: %w", err)
	}
	labels := map[string]string{"app": "floor"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "floor", Namespace: ns.Name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}},
			},
		},
	}
	start := time.Now()
	if err := c.Create(ctx, dep); err != nil {
		return 0, fmt.Errorf("creating the floor Deployment: %w", err)
	}
	for {
		got := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(dep), got); err == nil && got.Status.AvailableReplicas == 1 {
			return time.Since(start), nil
		}
		if time.Since(start) > time.Minute {
			return 0, fmt.Errorf("the floor Deployment was not Available within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// generate writes a repository of n apps, each a Kustomization with
// wait: true over a Deployment, a Service and a ConfigMap.
func generate(dir string, n int) error {
	write := func(path, text string) error {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, path)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, path), []byte(text), 0o644)
	}
	root := "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  interval: 1h\n  path: ./apps\n  prune: true\n  sourceRef: {kind: GitRepository, name: flux-system}\n"
	if err := write("kubernetes/flux/cluster/ks.yaml", root); err != nil {
		return err
	}
	for i := range n {
		app := "app-" + strconv.Itoa(i)
		ks := strings.NewReplacer("APP", app).Replace("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: APP\n  namespace: flux-system\nspec:\n  interval: 1h\n  path: ./src/APP\n  prune: true\n  wait: true\n  targetNamespace: default\n  sourceRef: {kind: GitRepository, name: flux-system}\n")
		manifests := strings.NewReplacer("APP", app).Replace("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: APP}\ndata: {k: v}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: APP}\nspec:\n  selector: {app: APP}\n  ports: [{port: 80}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: APP}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: APP}}\n  template:\n    metadata: {labels: {app: APP}}\n    spec: {containers: [{name: app, image: example.invalid/app:1}]}\n")
		if err := write("apps/"+app+".yaml", ks); err != nil {
			return err
		}
		if err := write("src/"+app+"/all.yaml", manifests); err != nil {
			return err
		}
	}
	return nil
}

// peakRSS reads the process's peak resident set size.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.Atoi(f[1])
				return fmt.Sprintf("%d MiB", kb/1024)
			}
		}
	}
	return "unknown"
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
