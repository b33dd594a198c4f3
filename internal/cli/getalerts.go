package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// newGetAlertsCommands are `weir get alerts` and `weir get alert-providers`,
// as flux names them. Alerts and Providers are static in v1beta3 (no
// status): the tables show what they say, not a Ready condition; delivery
// failures are events on the Alert (`weir events --for Alert/NAME`).
func (o *getOptions) newGetAlertsCommands() []*cobra.Command {
	namespace := func() string {
		if o.allNamespaces {
			return ""
		}
		return o.namespace
	}
	alerts := &cobra.Command{
		Use:     "alerts [NAME]",
		Aliases: []string{"alert"},
		Short:   "Print Alerts: their provider, severity and event sources",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list := &notificationv1beta3.AlertList{}
			if err := c.List(cmd.Context(), list, client.InNamespace(namespace())); err != nil {
				return fmt.Errorf("listing Alerts: %w", err)
			}
			var rows [][]string
			for _, a := range list.Items {
				if len(args) == 1 && a.Name != args[0] {
					continue
				}
				var sources []string
				for _, s := range a.Spec.EventSources {
					sources = append(sources, s.Kind+"/"+s.Name)
				}
				severity := a.Spec.EventSeverity
				if severity == "" {
					severity = "info"
				}
				rows = append(rows, []string{a.Namespace, a.Name, a.Spec.ProviderRef.Name, severity, fmt.Sprint(a.Spec.Suspend), strings.Join(sources, ",")})
			}
			return o.printStatic(cmd, "Alert", args, []string{"NAME", "PROVIDER", "SEVERITY", "SUSPENDED", "SOURCES"}, rows)
		},
	}
	providers := &cobra.Command{
		Use:     "alert-providers [NAME]",
		Aliases: []string{"alert-provider", "providers", "provider"},
		Short:   "Print alert Providers: their type and channel",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list := &notificationv1beta3.ProviderList{}
			if err := c.List(cmd.Context(), list, client.InNamespace(namespace())); err != nil {
				return fmt.Errorf("listing Providers: %w", err)
			}
			var rows [][]string
			for _, p := range list.Items {
				if len(args) == 1 && p.Name != args[0] {
					continue
				}
				rows = append(rows, []string{p.Namespace, p.Name, p.Spec.Type, p.Spec.Channel, fmt.Sprint(p.Spec.Suspend)})
			}
			return o.printStatic(cmd, "Provider", args, []string{"NAME", "TYPE", "CHANNEL", "SUSPENDED"}, rows)
		},
	}
	return []*cobra.Command{alerts, providers}
}

// printStatic prints rows (namespace first) under header, with NAMESPACE
// when listing every namespace.
func (o *getOptions) printStatic(cmd *cobra.Command, kind string, args, header []string, rows [][]string) error {
	if o.output != "table" {
		return fmt.Errorf("-o %s is not supported for %ss: use kubectl get %ss.notification.toolkit.fluxcd.io -o %s", o.output, kind, strings.ToLower(kind), o.output)
	}
	out := cmd.OutOrStdout()
	if len(rows) == 0 {
		if len(args) == 1 {
			return fmt.Errorf("%s %s/%s not found", kind, o.namespace, args[0])
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "✗ no %s objects found in %s namespace\n", kind, o.namespace)
		return nil
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0]+"/"+rows[i][1] < rows[j][0]+"/"+rows[j][1] })
	w := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	if o.allNamespaces {
		fmt.Fprintln(w, "NAMESPACE\t"+strings.Join(header, "\t"))
	} else {
		fmt.Fprintln(w, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		if o.allNamespaces {
			fmt.Fprintln(w, strings.Join(r, "\t"))
		} else {
			fmt.Fprintln(w, strings.Join(r[1:], "\t"))
		}
	}
	return w.Flush()
}
