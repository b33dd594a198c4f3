package logs

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Entry is one line of weir's log.
type Entry struct {
	// Time is when the line was written (zero for a line that is not JSON
	// or carries no time).
	Time time.Time
	// Level is the level as written: debug, info, error, or trace and
	// Level(-N) for the levels below debug.
	Level string
	// Message is the msg field.
	Message string
	// Error is the error field, set on lines at level error.
	Error string
	// Logger names what wrote the line when it is not about one object:
	// the controller ("kustomization") or the logger's name.
	Logger string
	// Kind, Namespace and Name are the Flux object the line is about
	// (controllerKind, namespace and name), empty when none.
	Kind, Namespace, Name string
	// ReconcileID tells apart the reconciles of one object.
	ReconcileID string
	// Line is the line as read, without its line break.
	Line string
	// Structured is false for a line that is not a JSON log entry: only
	// Line is set then.
	Structured bool

	// at orders the entry among others: Time, or for a line that is not
	// JSON the time of the entry before it in the same log.
	at time.Time
}

// Parse reads one line of the log. A line that is not a JSON object comes
// back with Structured false and the line in Line.
func Parse(line string) Entry {
	e := Entry{Line: line}
	trimmed := strings.TrimSpace(line)
	if !strings.HasPrefix(trimmed, "{") {
		return e
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(trimmed), &fields); err != nil {
		return e
	}
	str := func(key string) string {
		switch v := fields[key].(type) {
		case string:
			return v
		case nil:
			return ""
		default:
			return fmt.Sprint(v)
		}
	}
	e.Structured = true
	e.Time = parseTime(fields["ts"])
	e.at = e.Time
	e.Level = str("level")
	e.Message = str("msg")
	e.Error = str("error")
	e.Kind = str("controllerKind")
	e.Namespace = str("namespace")
	e.Name = str("name")
	e.ReconcileID = str("reconcileID")
	e.Logger = str("controller")
	if e.Logger == "" {
		e.Logger = str("logger")
	}
	return e
}

// parseTime reads the ts field in the encodings weir's loggers use:
// RFC 3339 (controller-runtime's default), ISO 8601 with milliseconds
// (Flux's logger, which weir's Deployment uses) or seconds since the
// epoch (zap's production default).
func parseTime(v any) time.Time {
	switch ts := v.(type) {
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z0700"} {
			if t, err := time.Parse(layout, ts); err == nil {
				return t
			}
		}
	case float64:
		sec, frac := math.Modf(ts)
		return time.Unix(int64(sec), int64(frac*1e9))
	}
	return time.Time{}
}

// timeLayout is how Format prints times, as `flux logs` does.
const timeLayout = "2006-01-02T15:04:05.000Z"

// Format prints e on one line as `flux logs` does: time, level, the object
// as Kind/namespace.name, and the message with its error:
//
//	2026-12-02T15:00:00.000Z error Kustomization/flux-system.apps - Reconciler error: kustomization path not found
//
// A line that is not JSON is printed as it is.
func (e Entry) Format() string {
	if !e.Structured {
		return e.Line
	}
	ts := "-"
	if !e.Time.IsZero() {
		ts = e.Time.UTC().Format(timeLayout)
	}
	msg := e.Message
	if e.Error != "" {
		msg += ": " + e.Error
	}
	return fmt.Sprintf("%s %s %s - %s", ts, e.Level, e.subject(), oneLine(msg))
}

// subject names what the entry is about: the object, else the controller
// or logger, else weir itself.
func (e Entry) subject() string {
	switch {
	case e.Kind != "" && e.Name != "" && e.Namespace != "":
		return e.Kind + "/" + e.Namespace + "." + e.Name
	case e.Kind != "" && e.Name != "":
		return e.Kind + "/" + e.Name
	case e.Kind != "":
		return e.Kind
	case e.Logger != "":
		return e.Logger
	}
	return "weir"
}

func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}
