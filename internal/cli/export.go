package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/control"
)

// runtimeAnnotations are set on objects by the tools that act on them,
// not written by their authors: an export leaves them out.
var runtimeAnnotations = []string{
	"kubectl.kubernetes.io/last-applied-configuration",
	meta.ReconcileRequestAnnotation,
	meta.ForceRequestAnnotation,
	"reconcile.fluxcd.io/resetAt",
}

type exportOptions struct {
	*globalOptions
	all             bool
	withCredentials bool
}

// newExportCommand is `weir export KIND [NAME...] [--all]`, as `flux
// export`: the objects as they would be written in a repository.
func newExportCommand(g *globalOptions) *cobra.Command {
	o := &exportOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Print Flux objects as clean YAML manifests",
		Long: "export prints Flux objects as `flux export` does, ready to commit to a repository: apiVersion,\n" +
			"kind, metadata with only the name, namespace, labels and annotations (less those tools set at\n" +
			"run time, such as kubectl.kubernetes.io/last-applied-configuration and\n" +
			"reconcile.fluxcd.io/requestedAt), and spec; no status. Each object is a YAML document after\n" +
			"\"---\". For a source, --with-credentials also prints the Secret its spec.secretRef names.",
		Example: "  # Every Kustomization of the namespace, to commit\n" +
			"  weir export kustomization --all > kustomizations.yaml\n\n" +
			"  # A GitRepository with its credentials, to move it to another cluster\n" +
			"  weir export source git podinfo --with-credentials > podinfo.yaml",
	}
	cmd.PersistentFlags().BoolVar(&o.all, "all", false, "export every object of the kind in the namespace")
	addKindCommands(cmd, func(group string, kinds []control.Kind) *cobra.Command {
		c := newVerbGroupCommand("Export")(group, kinds)
		if group == "source" {
			c.PersistentFlags().BoolVar(&o.withCredentials, "with-credentials", false,
				"also print the Secret named by each source's spec.secretRef (its data included: keep the output safe)")
		}
		return c
	}, func(k control.Kind) *cobra.Command {
		return &cobra.Command{
			Use:     k.Use + " [NAME...]",
			Aliases: k.Aliases,
			Short:   fmt.Sprintf("Print %s objects as YAML manifests", k.Name),
			Args:    nameArgs(k, true),
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.run(cmd, k, args)
			},
		}
	})
	return cmd
}

func (o *exportOptions) run(cmd *cobra.Command, k control.Kind, names []string) error {
	ctx := cmd.Context()
	c, err := objectClient(o.globalOptions)
	if err != nil {
		return err
	}
	var objs []control.Object
	if o.all {
		if objs, err = control.List(ctx, c, k, o.namespace); err != nil {
			return err
		}
		if len(objs) == 0 {
			return fmt.Errorf("no %s objects found in %s namespace", k.Name, o.namespace)
		}
	}
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			continue
		}
		obj, err := control.Get(ctx, c, k, client.ObjectKey{Namespace: o.namespace, Name: name})
		if err != nil {
			return err
		}
		objs = append(objs, obj)
	}

	// Print nothing until everything is read: a half export that exits 1
	// is easy to commit by mistake.
	var buf bytes.Buffer
	printed := map[client.ObjectKey]bool{}
	for _, obj := range objs {
		doc, err := exportObject(c.Scheme(), obj)
		if err != nil {
			return err
		}
		if err := printExport(&buf, doc); err != nil {
			return err
		}
		if !o.withCredentials {
			continue
		}
		key, ok := secretRef(obj)
		if !ok || printed[key] {
			continue
		}
		printed[key] = true
		secret, err := exportSecret(ctx, c, key)
		if err != nil {
			return err
		}
		if err := printExport(&buf, secret); err != nil {
			return err
		}
	}
	_, err = buf.WriteTo(cmd.OutOrStdout())
	return err
}

// exportObject is obj as flux export prints it: apiVersion, kind, the
// metadata its author wrote, and spec.
func exportObject(scheme *runtime.Scheme, obj control.Object) (map[string]any, error) {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return nil, fmt.Errorf("exporting %T %s: %w", obj, client.ObjectKeyFromObject(obj), err)
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("exporting %s %s: %w", gvk.Kind, client.ObjectKeyFromObject(obj), err)
	}
	metadata := map[string]any{"name": obj.GetName(), "namespace": obj.GetNamespace()}
	if l := obj.GetLabels(); len(l) > 0 {
		metadata["labels"] = l
	}
	annotations := map[string]string{}
	for key, value := range obj.GetAnnotations() {
		if !slices.Contains(runtimeAnnotations, key) {
			annotations[key] = value
		}
	}
	if len(annotations) > 0 {
		metadata["annotations"] = annotations
	}
	doc := map[string]any{
		"apiVersion": gvk.GroupVersion().String(),
		"kind":       gvk.Kind,
		"metadata":   metadata,
	}
	if spec, ok, _ := unstructured.NestedFieldNoCopy(u, "spec"); ok {
		doc["spec"] = spec
	}
	return doc, nil
}

// secretRef is the Secret a source's spec.secretRef names, in the
// source's namespace.
func secretRef(obj control.Object) (client.ObjectKey, bool) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return client.ObjectKey{}, false
	}
	name, _, _ := unstructured.NestedString(u, "spec", "secretRef", "name")
	return client.ObjectKey{Namespace: obj.GetNamespace(), Name: name}, name != ""
}

// exportSecret reads the Secret at key and returns it as flux export
// --with-credentials prints it: its name, namespace, type and data.
func exportSecret(ctx context.Context, c client.Client, key client.ObjectKey) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := c.Get(ctx, key, &s); err != nil {
		return nil, fmt.Errorf("reading Secret %s for --with-credentials: %w", key, err)
	}
	out := &corev1.Secret{Data: s.Data, Type: s.Type}
	out.APIVersion, out.Kind = "v1", "Secret"
	out.Name, out.Namespace = key.Name, key.Namespace
	return out, nil
}

// printExport prints doc as flux export does: "---", then the YAML
// document without an empty creationTimestamp or status.
func printExport(out io.Writer, doc any) error {
	data, err := yaml.Marshal(doc)
	if err != nil {
		return fmt.Errorf("printing the manifest: %w", err)
	}
	data = bytes.Replace(data, []byte("  creationTimestamp: null\n"), nil, 1)
	data = bytes.Replace(data, []byte("status: {}\n"), nil, 1)
	_, err = fmt.Fprintf(out, "---\n%s\n", bytes.TrimSpace(data))
	return err
}
