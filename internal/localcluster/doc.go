// Package localcluster runs a real Kubernetes control plane on the local
// machine: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok (a simulated kubelet), each a child process on free loopback ports.
//
// A cluster lives in a state folder that holds its certificates, its admin
// token, its kubeconfig and etcd's data, so that starting again on the same
// folder resumes the same cluster:
//
//	c, err := localcluster.Start(ctx, localcluster.Options{StateDir: dir, Nodes: 1})
//	if err != nil { ... }
//	defer c.Stop()
//	cfg := c.RESTConfig()
//
// The binaries are built once from Go modules by tools/controlplane/build.sh;
// BinDir says where they are looked for.
package localcluster
