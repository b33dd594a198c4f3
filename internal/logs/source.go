package logs

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
)

// SourceFor says where weir's log is: the log file of the `weir up` run
// whose state folder is stateDir, when given; else that of the run whose
// cluster the kubeconfig (the --kubeconfig flag, else the first file of
// $KUBECONFIG) belongs to; else the pods of weir's Deployment in the
// cluster, read with the client newClient makes.
func SourceFor(stateDir, kubeconfig string, newClient func() (kubernetes.Interface, error)) (Source, error) {
	if stateDir != "" {
		path := UpLogFile(stateDir)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no weir log in the state folder %s (is it the state folder of a `weir up` run?): %w", stateDir, err)
		}
		return File{Path: path}, nil
	}
	if kubeconfig == "" {
		if list := filepath.SplitList(os.Getenv("KUBECONFIG")); len(list) > 0 {
			kubeconfig = list[0]
		}
	}
	if dir, ok := UpStateDir(kubeconfig); ok {
		return File{Path: UpLogFile(dir)}, nil
	}
	c, err := newClient()
	if err != nil {
		return nil, err
	}
	return Pods{Client: c}, nil
}
