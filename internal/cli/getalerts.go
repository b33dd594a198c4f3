package cli

import (
	"fmt"
	"strings"
	"time"

	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"

	"github.com/weirhq/weir/internal/control"
)

// staticColumns are the columns of `weir get alerts` and `weir get
// alert-providers`. Alerts and Providers are static in v1beta3 (no
// status): the tables show what they say, not a Ready condition; delivery
// failures are events on the Alert (`weir events --for Alert/NAME`). wide
// adds the object's age.
func staticColumns(k control.Kind, wide bool) columns {
	var cols columns
	switch k.Name {
	case notificationv1beta3.AlertKind:
		cols.header = []string{"PROVIDER", "SEVERITY", "SUSPENDED", "SOURCES"}
		cols.row = func(obj control.Object, _ time.Time) []string {
			a, ok := obj.(*notificationv1beta3.Alert)
			if !ok {
				return []string{"", "", "", ""}
			}
			var sources []string
			for _, s := range a.Spec.EventSources {
				sources = append(sources, s.Kind+"/"+s.Name)
			}
			severity := a.Spec.EventSeverity
			if severity == "" {
				severity = "info"
			}
			return []string{a.Spec.ProviderRef.Name, severity, fmt.Sprint(a.Spec.Suspend), strings.Join(sources, ",")}
		}
	case notificationv1beta3.ProviderKind:
		cols.header = []string{"TYPE", "CHANNEL", "SUSPENDED"}
		cols.row = func(obj control.Object, _ time.Time) []string {
			p, ok := obj.(*notificationv1beta3.Provider)
			if !ok {
				return []string{"", "", ""}
			}
			return []string{p.Spec.Type, p.Spec.Channel, fmt.Sprint(p.Spec.Suspend)}
		}
	default:
		// A static kind added to control's table without columns of its
		// own: its suspension, which every kind has.
		cols.header = []string{"SUSPENDED"}
		cols.row = func(obj control.Object, _ time.Time) []string {
			return []string{titleBool(control.StatusOf(obj).Suspended)}
		}
	}
	if !wide {
		return cols
	}
	row := cols.row
	cols.header = append(cols.header, "AGE")
	cols.row = func(obj control.Object, now time.Time) []string {
		return append(row(obj, now), age(obj.GetCreationTimestamp(), now))
	}
	return cols
}
