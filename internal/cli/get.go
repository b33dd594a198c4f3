package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/control"
	"github.com/weirhq/weir/internal/kube"
)

// objectClient connects the verbs that act on Flux objects to the cluster;
// tests replace it with a fake client.
var objectClient = (*globalOptions).clusterClient

// restConfig finds the cluster as kubectl does and acts there as the user
// and groups of --as and --as-group, when given.
func (g *globalOptions) restConfig() (*rest.Config, error) {
	if len(g.asGroups) > 0 && g.asUser == "" {
		return nil, errors.New("--as-group needs --as: the API server impersonates groups only with a user")
	}
	cfg, err := kube.Config(g.kubeconfig, g.context)
	if err != nil {
		return nil, err
	}
	if g.asUser != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: g.asUser, Groups: g.asGroups}
	}
	return cfg, nil
}

// clusterClient is a client of the cluster that can also watch (see
// client.WithWatch), for `weir get --watch`.
func (g *globalOptions) clusterClient() (client.Client, error) {
	cfg, err := g.restConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return c, nil
}

// addKindCommands adds to parent one command per kind of control.Kinds,
// made by newKind; a kind with a group ("source") goes under that group's
// command, made once by newGroup. A kind added to control's table thus
// appears under every verb that serves it: newKind returns nil for a kind
// its verb does not apply to. Each kind's command completes its NAME
// arguments from the cluster (see completeNames) unless it says otherwise.
func addKindCommands(parent *cobra.Command, newGroup func(group string, kinds []control.Kind) *cobra.Command, newKind func(control.Kind) *cobra.Command) {
	var groups []string
	byGroup := map[string][]control.Kind{}
	add := func(to *cobra.Command, k control.Kind) {
		c := newKind(k)
		if c == nil {
			return
		}
		if c.ValidArgsFunction == nil {
			c.ValidArgsFunction = completeNames(k)
		}
		to.AddCommand(c)
	}
	for _, k := range control.Kinds() {
		if k.Group == "" {
			add(parent, k)
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
			add(g, k)
		}
		parent.AddCommand(g)
	}
}

type getOptions struct {
	*globalOptions
	allNamespaces  bool
	output         string
	watch          bool
	timeout        time.Duration
	statusSelector string
	selector       string
}

func newGetCommand(g *globalOptions) *cobra.Command {
	o := &getOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print Flux objects and their status",
		Long: "get prints Flux objects with their revision, whether they are suspended, and their Ready\n" +
			"condition, in the flux CLI's columns. -o wide adds the Ready reason, how long Ready has had\n" +
			"its status (SINCE) and the object's age; -o json or -o yaml prints the objects themselves, as\n" +
			"`kubectl get -o` does. --watch prints the table, then a line per change.\n\n" +
			"--status-selector keeps the objects whose condition has a status, as flux's does: ready=false\n" +
			"lists what fails, ready=unknown what is still reconciling or was never reconciled, and\n" +
			"ready!=true both; other conditions work too (reconciling=true, stalled=true). Alerts and\n" +
			"Providers have no status and count as Ready. -l/--selector filters by labels, as kubectl's does.",
		Example: "  # What is failing, in every namespace\n" +
			"  weir get all -A --status-selector ready=false\n\n" +
			"  # The Kustomizations of one team, with the Ready reason and age\n" +
			"  weir get kustomizations -l team=payments -o wide\n\n" +
			"  # Follow the GitRepositories as they change, for ten minutes\n" +
			"  weir get sources git --watch --timeout 10m",
	}
	pf := cmd.PersistentFlags()
	pf.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list the objects of every namespace")
	pf.StringVarP(&o.output, "output", "o", "table", "output format: table, wide, json or yaml")
	pf.BoolVarP(&o.watch, "watch", "w", false, "after printing the objects, print a line for each change until interrupted or --timeout")
	pf.DurationVar(&o.timeout, "timeout", 0, "with --watch, stop watching after this long (default: until interrupted)")
	pf.StringVar(&o.statusSelector, "status-selector", "", "keep the objects whose condition has this status: ready=false, ready=true, ready=unknown, or TYPE!=STATUS")
	pf.StringVarP(&o.selector, "selector", "l", "", "keep the objects whose labels match this selector, such as app=podinfo,tier!=cache")
	// flux spells it --label-selector: accept that too, without listing it twice.
	pf.StringVar(&o.selector, "label-selector", "", "the same as --selector, as flux spells it")
	_ = pf.MarkHidden("label-selector")
	addKindCommands(cmd, o.newGroupCommand, o.newKindCommand)
	cmd.AddCommand(&cobra.Command{
		Use:   "all",
		Short: "Print the Flux objects of every kind and their status",
		Long: "get all prints one table per kind that has objects, the names prefixed with the kind, as\n" +
			"`flux get all` does.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, control.Kinds(), nil, "Flux objects", true)
		},
	})
	return cmd
}

// newKindCommand lists one kind: "weir get sources git [NAME]". Kinds
// outside a group are named by their plural, as in "flux get kustomizations".
func (o *getOptions) newKindCommand(k control.Kind) *cobra.Command {
	use, aliases := k.Use, k.Aliases
	if k.Group == "" {
		use, aliases = k.Use+"s", append([]string{k.Use}, k.Aliases...)
		for _, a := range k.Aliases {
			// The plural of a word ("providers"), not of an abbreviation ("ks").
			if len(a) > 3 {
				aliases = append(aliases, a+"s")
			}
		}
	}
	short := fmt.Sprintf("Print %s objects and their status", k.Name)
	if k.Static {
		short = fmt.Sprintf("Print %s objects (they have no status)", k.Name)
	}
	return &cobra.Command{
		Use:     use + " [NAME]",
		Aliases: aliases,
		Short:   short,
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

// getQuery is what get looks for, parsed from its arguments and flags.
type getQuery struct {
	kinds     []control.Kind
	name      string // empty: every object
	namespace string // empty: every namespace
	labels    labels.Selector
	status    *statusSelector // nil: any status
}

// keeps says whether obj is one the query asks for: the List or Watch
// that read it may not have applied every criterion (a fake client
// ignores label selectors on a watch).
func (q *getQuery) keeps(k control.Kind, obj control.Object) bool {
	return (q.name == "" || obj.GetName() == q.name) &&
		(q.namespace == "" || obj.GetNamespace() == q.namespace) &&
		q.labels.Matches(labels.Set(obj.GetLabels())) &&
		q.status.matches(k, obj)
}

// listOptions narrow a List or Watch to the query's namespace and labels.
func (q *getQuery) listOptions() []client.ListOption {
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: q.labels}}
	if q.namespace != "" {
		opts = append(opts, client.InNamespace(q.namespace))
	}
	return opts
}

// query parses the arguments and flags of a get of kinds.
func (o *getOptions) query(kinds []control.Kind, args []string) (*getQuery, error) {
	switch o.output {
	case "table", "wide", "json", "yaml":
	default:
		return nil, fmt.Errorf("unknown output format %q: use table, wide, json or yaml", o.output)
	}
	q := &getQuery{kinds: kinds, namespace: o.namespace}
	if o.allNamespaces {
		q.namespace = ""
	}
	if len(args) == 1 {
		if o.allNamespaces {
			return nil, errors.New("a NAME is looked up in one namespace: give -n NAMESPACE instead of -A")
		}
		if o.selector != "" {
			return nil, errors.New("give a NAME or --selector, not both")
		}
		q.name = args[0]
	}
	var err error
	if q.labels, err = labels.Parse(o.selector); err != nil {
		return nil, fmt.Errorf("--selector %q: %w", o.selector, err)
	}
	if q.status, err = parseStatusSelector(o.statusSelector); err != nil {
		return nil, err
	}
	return q, nil
}

// run prints the objects of kinds, or the one named by args. what names
// them when there are none; withKind prefixes names with their kind, as
// flux's "get all" does.
func (o *getOptions) run(cmd *cobra.Command, kinds []control.Kind, args []string, what string, withKind bool) error {
	q, err := o.query(kinds, args)
	if err != nil {
		return err
	}
	c, err := objectClient(o.globalOptions)
	if err != nil {
		return err
	}
	if o.watch {
		return o.watchObjects(cmd, c, q, what, withKind)
	}
	found, err := o.find(cmd, c, q)
	if err != nil {
		return err
	}

	out := cmd.OutOrStdout()
	if o.output == "json" || o.output == "yaml" {
		return printObjects(out, o.output, c.Scheme(), found, q.name != "")
	}
	if len(found) == 0 {
		if q.name != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s %s/%s does not match --status-selector %s\n", kinds[0].Name, o.namespace, q.name, o.statusSelector)
			return nil
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "no %s found in %s\n", what, o.where())
		return nil
	}
	now := time.Now()
	for _, ko := range found {
		cols := columnsOf(ko.kind, o.output == "wide")
		rows := [][]string{cols.heading(o.allNamespaces)}
		for _, obj := range ko.objs {
			rows = append(rows, cols.cells(ko.kind, obj, now, o.allNamespaces, withKind))
		}
		t := newTable(rows)
		for _, row := range rows {
			fmt.Fprintln(out, t.line(row))
		}
		if withKind {
			fmt.Fprintln(out)
		}
	}
	return nil
}

// where says where get looked, for a message: "flux-system namespace".
func (o *getOptions) where() string {
	if o.allNamespaces {
		return "any namespace"
	}
	return o.namespace + " namespace"
}

// find reads the objects the query asks for, by kind, leaving out the
// kinds that have none. A NAME that does not exist is an error.
func (o *getOptions) find(cmd *cobra.Command, c client.Client, q *getQuery) ([]kindObjects, error) {
	var found []kindObjects
	for _, k := range q.kinds {
		var objs []control.Object
		if q.name != "" {
			obj, err := control.Get(cmd.Context(), c, k, client.ObjectKey{Namespace: q.namespace, Name: q.name})
			if err != nil {
				return nil, err
			}
			objs = []control.Object{obj}
		} else {
			var err error
			objs, err = control.List(cmd.Context(), c, k, q.namespace, client.MatchingLabelsSelector{Selector: q.labels})
			if apimeta.IsNoMatchError(err) && len(q.kinds) > 1 {
				continue // get all: a kind whose CRD is not installed (ArtifactGenerator without source-watcher) has no objects
			}
			if err != nil {
				return nil, err
			}
		}
		objs = slices.DeleteFunc(objs, func(obj control.Object) bool { return !q.keeps(k, obj) })
		if len(objs) > 0 {
			found = append(found, kindObjects{kind: k, objs: objs})
		}
	}
	return found, nil
}

// columns are what a table shows of the objects of one kind, after their
// NAME (and NAMESPACE with -A).
type columns struct {
	header []string
	row    func(obj control.Object, now time.Time) []string
	// widest are the widest values of the columns whose values are few
	// ("Unknown" for READY), empty for the others: a watch sizes its
	// columns with them, so that a later line fits the first table.
	widest []string
}

// heading is the table's header line.
func (cols columns) heading(withNamespace bool) []string {
	h := append([]string{"NAME"}, cols.header...)
	if withNamespace {
		h = append([]string{"NAMESPACE"}, h...)
	}
	return h
}

// widestRow sizes a table's columns for the values it may show later.
func (cols columns) widestRow(withNamespace bool) []string {
	row := append([]string{""}, cols.widest...)
	if withNamespace {
		row = append([]string{""}, row...)
	}
	return row
}

// cells is obj's row: its namespace with -A, its name (after its kind in
// "get all", as "gitrepository/podinfo"), then the kind's columns.
func (cols columns) cells(k control.Kind, obj control.Object, now time.Time, withNamespace, withKind bool) []string {
	name := obj.GetName()
	if withKind {
		name = strings.ToLower(k.Name) + "/" + name
	}
	row := append([]string{name}, cols.row(obj, now)...)
	if withNamespace {
		row = append([]string{obj.GetNamespace()}, row...)
	}
	return row
}

// columnsOf are kind k's columns: the flux CLI's REVISION SUSPENDED READY
// MESSAGE for the kinds with a status (see staticColumns for the others);
// wide adds the Ready reason, how long Ready has had its status and the
// object's age before the message.
func columnsOf(k control.Kind, wide bool) columns {
	if k.Static {
		return staticColumns(k, wide)
	}
	oneLine := strings.NewReplacer("\n", " ", "\t", " ")
	cols := columns{
		header: []string{"REVISION", "SUSPENDED", "READY", "MESSAGE"},
		widest: []string{"", "False", "Unknown"},
	}
	cols.row = func(obj control.Object, now time.Time) []string {
		st := control.StatusOf(obj)
		row := []string{control.AbbreviateHashes(st.Revision), titleBool(st.Suspended), st.Ready}
		if wide {
			since := "-"
			if ready := apimeta.FindStatusCondition(control.Conditions(obj), meta.ReadyCondition); ready != nil {
				since = age(ready.LastTransitionTime, now)
			}
			row = append(row, orDash(st.Reason), since, age(obj.GetCreationTimestamp(), now))
		}
		return append(row, oneLine.Replace(control.AbbreviateHashes(st.Message)))
	}
	if wide {
		cols.header = []string{"REVISION", "SUSPENDED", "READY", "REASON", "SINCE", "AGE", "MESSAGE"}
	}
	if k.Name == notificationv1.ReceiverKind {
		// A Receiver has no revision: flux's columns start at SUSPENDED.
		row := cols.row
		cols.header, cols.widest = cols.header[1:], cols.widest[1:]
		cols.row = func(obj control.Object, now time.Time) []string { return row(obj, now)[1:] }
	}
	return cols
}

// age is how long ago t was, as kubectl prints an AGE: "5m", "3d4h".
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func titleBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// table aligns rows of cells in columns as the flux CLI's tables are: each
// column as wide as its widest cell, three spaces apart. A line printed
// later (a change under --watch) keeps the widths of the first rows, and
// pushes the columns after a wider cell.
type table struct{ widths []int }

func newTable(rows [][]string) *table {
	t := &table{}
	for _, row := range rows {
		for i, cell := range row {
			if i == len(t.widths) {
				t.widths = append(t.widths, 0)
			}
			t.widths[i] = max(t.widths[i], utf8.RuneCountInString(cell))
		}
	}
	return t
}

// line is row aligned, without a newline.
func (t *table) line(row []string) string {
	var b strings.Builder
	for i, cell := range row {
		b.WriteString(cell)
		if i == len(row)-1 {
			break
		}
		width := 0
		if i < len(t.widths) {
			width = t.widths[i]
		}
		b.WriteString(strings.Repeat(" ", max(width-utf8.RuneCountInString(cell), 0)+3))
	}
	return b.String()
}

// statusSelector keeps the objects whose condition has a status, as
// flux's --status-selector does: "ready=false", "ready!=true".
type statusSelector struct {
	condition, status string
	negate            bool
}

// parseStatusSelector reads TYPE=STATUS or TYPE!=STATUS; an empty s is a
// nil selector, which keeps every object.
func parseStatusSelector(s string) (*statusSelector, error) {
	if s == "" {
		return nil, nil
	}
	sel := &statusSelector{}
	sep := "="
	if strings.Contains(s, "!=") {
		sep, sel.negate = "!=", true
	}
	condition, status, _ := strings.Cut(s, sep)
	sel.condition, sel.status = strings.TrimSpace(condition), strings.TrimSpace(status)
	if sel.condition == "" || sel.status == "" {
		return nil, fmt.Errorf("--status-selector %q: want TYPE=STATUS or TYPE!=STATUS, such as ready=false", s)
	}
	valid := []string{"true", "false", "unknown"}
	if !slices.Contains(valid, strings.ToLower(sel.status)) {
		return nil, fmt.Errorf("--status-selector %q: a condition's status is true, false or unknown", s)
	}
	return sel, nil
}

// matches says whether obj of kind k is kept. Ready is read as the tables
// show it: Unknown also for an object not reconciled yet; another
// condition type that obj lacks matches no status (and every != status).
func (s *statusSelector) matches(k control.Kind, obj control.Object) bool {
	if s == nil {
		return true
	}
	got := ""
	switch {
	case k.Static:
		// No status: as flux, an Alert or a Provider is taken as Ready.
		if strings.EqualFold(s.condition, meta.ReadyCondition) {
			got = string(metav1.ConditionTrue)
		}
	case strings.EqualFold(s.condition, meta.ReadyCondition):
		got = control.StatusOf(obj).Ready
	default:
		for _, c := range control.Conditions(obj) {
			if strings.EqualFold(c.Type, s.condition) {
				got = string(c.Status)
			}
		}
	}
	return strings.EqualFold(got, s.status) != s.negate
}

// printObjects prints the objects as kubectl does: one object alone when
// single, else a v1 List, each with apiVersion and kind and without
// managedFields.
func printObjects(out io.Writer, format string, scheme *runtime.Scheme, found []kindObjects, single bool) error {
	items := []any{}
	for _, ko := range found {
		for _, obj := range ko.objs {
			u, err := objectMap(scheme, obj)
			if err != nil {
				return err
			}
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
	return printDocument(out, format, doc)
}

// objectMap is obj as kubectl prints it: with apiVersion and kind, without
// managedFields.
func objectMap(scheme *runtime.Scheme, obj control.Object) (map[string]any, error) {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return nil, fmt.Errorf("printing %T %s: %w", obj, client.ObjectKeyFromObject(obj), err)
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("printing %s %s: %w", gvk.Kind, client.ObjectKeyFromObject(obj), err)
	}
	u["apiVersion"], u["kind"] = gvk.GroupVersion().String(), gvk.Kind
	unstructured.RemoveNestedField(u, "metadata", "managedFields")
	return u, nil
}

// printDocument prints doc as indented JSON or as YAML.
func printDocument(out io.Writer, format string, doc any) error {
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
