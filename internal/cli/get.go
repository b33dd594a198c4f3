package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/control"
)

// objectClient connects the verbs that act on Flux objects to the cluster;
// tests replace it with a fake client.
var objectClient = (*globalOptions).client

// addKindCommands adds to parent one command per kind of control.Kinds,
// made by newKind; a kind with a group ("source") goes under that group's
// command, made once by newGroup. A kind added to control's table thus
// appears under every verb that serves it: newKind returns nil for a kind
// its verb does not apply to.
func addKindCommands(parent *cobra.Command, newGroup func(group string, kinds []control.Kind) *cobra.Command, newKind func(control.Kind) *cobra.Command) {
	var groups []string
	byGroup := map[string][]control.Kind{}
	for _, k := range control.Kinds() {
		if k.Group == "" {
			if c := newKind(k); c != nil {
				parent.AddCommand(c)
			}
			continue
		}
		if _, ok := byGroup[k.Group]; !ok {
			groups = append(groups, k.Group)
		}
		byGroup[k.Group] = append(byGroup[k.Group], k)
	}
	for _, group := range groups {
		g := newGroup(group, byGroup[group])
		for _, k := range byGroup[group] {
			if c := newKind(k); c != nil {
				g.AddCommand(c)
			}
		}
		parent.AddCommand(g)
	}
}

type getOptions struct {
	*globalOptions
	allNamespaces bool
	output        string
}

func newGetCommand(g *globalOptions) *cobra.Command {
	o := &getOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print Flux objects and their status",
		Long: "get prints Flux objects with their revision, whether they are suspended, and their Ready\n" +
			"condition, in the flux CLI's columns; -o json or -o yaml prints the objects themselves.",
	}
	pf := cmd.PersistentFlags()
	pf.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list the objects of every namespace")
	pf.StringVarP(&o.output, "output", "o", "table", "output format: table, json or yaml")
	addKindCommands(cmd, o.newGroupCommand, o.newKindCommand)
	cmd.AddCommand(o.newGetAlertsCommands()...)
	return cmd
}

// newKindCommand lists one kind: "weir get sources git [NAME]". Kinds
// outside a group are named by their plural, as in "flux get kustomizations".
func (o *getOptions) newKindCommand(k control.Kind) *cobra.Command {
	if k.Static {
		return nil // their own tables: newGetAlertsCommands
	}
	use, aliases := k.Use, k.Aliases
	if k.Group == "" {
		use, aliases = k.Use+"s", append([]string{k.Use}, k.Aliases...)
	}
	return &cobra.Command{
		Use:     use + " [NAME]",
		Aliases: aliases,
		Short:   fmt.Sprintf("Print %s objects and their status", k.Name),
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, []control.Kind{k}, args, k.Name+" objects", false)
		},
	}
}

// newGroupCommand holds the kinds of a group, "weir get sources git", and
// lists them all with "weir get sources all".
func (o *getOptions) newGroupCommand(group string, kinds []control.Kind) *cobra.Command {
	cmd := &cobra.Command{
		Use:     group + "s",
		Aliases: []string{group},
		Short:   fmt.Sprintf("Print %ss and their status", group),
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "all",
		Short: fmt.Sprintf("Print the %ss of every kind and their status", group),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, kinds, nil, group+" objects", true)
		},
	})
	return cmd
}

// kindObjects are the objects of one kind that get prints.
type kindObjects struct {
	kind control.Kind
	objs []control.Object
}

// run prints the objects of kinds, or the one named by args. what names
// them when there are none; withKind prefixes names with their kind, as
// flux's "get all" does.
func (o *getOptions) run(cmd *cobra.Command, kinds []control.Kind, args []string, what string, withKind bool) error {
	switch o.output {
	case "table", "json", "yaml":
	default:
		return fmt.Errorf("unknown output format %q: use table, json or yaml", o.output)
	}
	if len(args) == 1 && o.allNamespaces {
		return errors.New("a NAME is looked up in one namespace: give -n NAMESPACE instead of -A")
	}
	c, err := objectClient(o.globalOptions)
	if err != nil {
		return err
	}
	namespace, where := o.namespace, o.namespace+" namespace"
	if o.allNamespaces {
		namespace, where = "", "any namespace"
	}
	var found []kindObjects
	for _, k := range kinds {
		var objs []control.Object
		if len(args) == 1 {
			obj, err := control.Get(cmd.Context(), c, k, client.ObjectKey{Namespace: namespace, Name: args[0]})
			if err != nil {
				return err
			}
			objs = []control.Object{obj}
		} else if objs, err = control.List(cmd.Context(), c, k, namespace); err != nil {
			return err
		}
		if len(objs) > 0 {
			found = append(found, kindObjects{kind: k, objs: objs})
		}
	}

	out := cmd.OutOrStdout()
	if o.output != "table" {
		return printObjects(out, o.output, c.Scheme(), found, len(args) == 1)
	}
	if len(found) == 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "no %s found in %s\n", what, where)
		return nil
	}
	for _, ko := range found {
		if err := printStatusTable(out, ko, o.allNamespaces, withKind); err != nil {
			return err
		}
		if withKind {
			fmt.Fprintln(out)
		}
	}
	return nil
}

// printStatusTable prints objects in the flux CLI's columns:
// NAME REVISION SUSPENDED READY MESSAGE, after NAMESPACE with -A.
func printStatusTable(out io.Writer, ko kindObjects, withNamespace, withKind bool) error {
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	header := "NAME\tREVISION\tSUSPENDED\tREADY\tMESSAGE"
	if withNamespace {
		header = "NAMESPACE\t" + header
	}
	fmt.Fprintln(tw, header)
	oneLine := strings.NewReplacer("\n", " ", "\t", " ")
	for _, obj := range ko.objs {
		st := control.StatusOf(obj)
		name := obj.GetName()
		if withKind {
			name = strings.ToLower(ko.kind.Name) + "/" + name
		}
		row := []string{
			name,
			control.AbbreviateHashes(st.Revision),
			titleBool(st.Suspended),
			st.Ready,
			oneLine.Replace(control.AbbreviateHashes(st.Message)),
		}
		if withNamespace {
			row = append([]string{obj.GetNamespace()}, row...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("printing the table: %w", err)
	}
	return nil
}

func titleBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// printObjects prints the objects as kubectl does: one object alone when
// single, else a v1 List, each with apiVersion and kind and without
// managedFields.
func printObjects(out io.Writer, format string, scheme *runtime.Scheme, found []kindObjects, single bool) error {
	items := []any{}
	for _, ko := range found {
		for _, obj := range ko.objs {
			gvk, err := apiutil.GVKForObject(obj, scheme)
			if err != nil {
				return fmt.Errorf("printing %s %s: %w", ko.kind.Name, client.ObjectKeyFromObject(obj), err)
			}
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			if err != nil {
				return fmt.Errorf("printing %s %s: %w", ko.kind.Name, client.ObjectKeyFromObject(obj), err)
			}
			u["apiVersion"], u["kind"] = gvk.GroupVersion().String(), gvk.Kind
			unstructured.RemoveNestedField(u, "metadata", "managedFields")
			items = append(items, u)
		}
	}
	var doc any = map[string]any{
		"apiVersion": "v1",
		"kind":       "List",
		"metadata":   map[string]any{"resourceVersion": ""},
		"items":      items,
	}
	if single && len(items) == 1 {
		doc = items[0]
	}
	var data []byte
	var err error
	if format == "json" {
		data, err = json.MarshalIndent(doc, "", "    ")
		data = append(data, '\n')
	} else {
		data, err = yaml.Marshal(doc)
	}
	if err != nil {
		return fmt.Errorf("printing the objects as %s: %w", format, err)
	}
	_, err = out.Write(data)
	return err
}
