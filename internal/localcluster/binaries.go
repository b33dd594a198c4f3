package localcluster

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// BinDirEnv names the environment variable that points at the folder holding
// the control plane binaries.
const BinDirEnv = "WEIR_CONTROLPLANE_DIR"

// binaries are the programs a cluster runs, by file name.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// stagesFile is kwok's stage configuration, written beside the binaries by
// the build script.
const stagesFile = "kwok-stages.yaml"

// chaosStagesFile holds kwok's chaos stages, loaded when present beside
// the binaries. They act only on pods that ask for them: a pod labelled
// pod-init-container-running-failed.stage.kwok.x-k8s.io=true fails
// (phase Failed) instead of turning Ready, one labelled
// pod-container-running-failed.stage.kwok.x-k8s.io=true fails once
// running, so that tests and `weir up` users can make a rollout fail.
const chaosStagesFile = "kwok-chaos-stages.yaml"

// podReadyAgain is a kwok stage that reports running pods Ready again
// once the node controller has marked them NotReady, as a kubelet does
// when its node is back (see the file).
//
//go:embed stages/pod-ready-again.yaml
var podReadyAgain []byte

// BinDir finds the folder of control plane binaries: $WEIR_CONTROLPLANE_DIR
// when set, else the first .cache/controlplane/bin found walking up from the
// working folder or from the weir executable's folder.
func BinDir() (string, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		if err := checkBinDir(d); err != nil {
			return "", err
		}
		return d, nil
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	for _, start := range starts {
		for dir := start; ; dir = filepath.Dir(dir) {
			cand := filepath.Join(dir, ".cache", "controlplane", "bin")
			if checkBinDir(cand) == nil {
				return cand, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", errors.New("the local control plane binaries were not found: run `make controlplane` in weir's source folder, or set " + BinDirEnv + " to the folder that holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok")
}

func checkBinDir(dir string) error {
	for _, b := range append(binaries, stagesFile) {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Errorf("control plane folder %s is incomplete (missing %s): run `make controlplane`", dir, b)
		}
	}
	return nil
}

// fileExists reports whether p is a regular file.
func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
