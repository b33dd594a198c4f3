// Package ociregistry runs an OCI registry on loopback, in process
// (go-containerregistry's in-memory registry), and pushes Flux artifacts
// and Helm charts into it the way `flux push artifact` and
// `helm package` + `helm push` do, without those tools.
//
// `weir up` starts one and pushes the charts of the user's repository into
// it (PushCharts), so that OCIRepositories can point at them; tests start
// one per test through internal/testenv.
//
//	reg, err := ociregistry.Start(ctx, ociregistry.Options{})
//	if err != nil {
//		return err
//	}
//	defer reg.Stop()
//	charts, err := reg.PushCharts(ctx, "examples/charts")
//	// charts[0].URL is oci://127.0.0.1:PORT/charts/app, tag charts[0].Version
//
// The registry keeps everything in memory: a new one starts empty.
package ociregistry
