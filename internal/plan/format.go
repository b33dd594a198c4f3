package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// CommentLimit is the most characters GitHub takes in a pull request
// comment.
const CommentLimit = 65536

// symbol marks an action in the terminal and in Markdown.
func symbol(a Action) string {
	switch a {
	case Create:
		return "+"
	case Update:
		return "~"
	case Replace:
		return "-/+"
	case Prune:
		return "-"
	}
	return "!"
}

// describe is how a summary says n changes of action a.
func describe(a Action, n int) string {
	switch a {
	case Create:
		return fmt.Sprintf("%d to create", n)
	case Update:
		return fmt.Sprintf("%d to update", n)
	case Replace:
		return fmt.Sprintf("%d to replace", n)
	case Prune:
		return fmt.Sprintf("%d to prune", n)
	}
	return fmt.Sprintf("%d left in the cluster", n)
}

// counts is the "1 to create, 2 to update" list of an owner or a plan,
// only the actions that occur.
func counts(count func(Action) int) string {
	var parts []string
	for _, a := range Actions {
		if n := count(a); n > 0 {
			parts = append(parts, describe(a, n))
		}
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, ", ")
}

// Summary is the plan's one-line summary.
func (p *Plan) Summary() string {
	s := counts(func(a Action) int { return p.Totals[a] })
	s += fmt.Sprintf("; %d unchanged", p.Unchanged)
	if n := p.Failed(); n > 0 {
		s += fmt.Sprintf("; %d failed to render", n)
	}
	return s
}

func (o *OwnerPlan) title() string {
	t := o.Kind + " " + o.Namespace + "/" + o.Name
	if o.State != "" {
		t += " (" + o.State + ")"
	}
	return t
}

// WriteJSON writes the plan as indented JSON.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// Terminal colours.
const (
	bold  = "\x1b[1m"
	red   = "\x1b[31m"
	green = "\x1b[32m"
	amber = "\x1b[33m"
	cyan  = "\x1b[36m"
	reset = "\x1b[0m"
)

// WriteText writes the plan for a terminal: per cluster and owner, each
// change with its diff, then the summary; colour adds ANSI colours.
func (p *Plan) WriteText(w io.Writer, colour bool) error {
	paint := func(c, s string) string {
		if !colour || s == "" {
			return s
		}
		return c + s + reset
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", paint(bold, "Plan: "+p.From+" → "+p.To))
	cluster := "\x00"
	for _, o := range p.Owners {
		if o.Cluster != cluster {
			cluster = o.Cluster
			fmt.Fprintf(&b, "\ncluster %s\n", paint(bold, cluster))
		}
		line := "  " + paint(bold, o.title()) + ": "
		switch {
		case o.Error != "":
			line += paint(red, "✗ does not render: "+o.Error)
		case o.Skipped != "":
			line += "not compared: " + o.Skipped
		default:
			line += counts(o.Count)
		}
		b.WriteString(line + "\n")
		for _, c := range o.Changes {
			colourOf := map[Action]string{Create: green, Update: amber, Replace: red, Prune: red, Orphan: amber}[c.Action]
			fmt.Fprintf(&b, "    %s %s\n", paint(colourOf, symbol(c.Action)), c.ID())
			if c.Note != "" {
				fmt.Fprintf(&b, "      %s\n", c.Note)
			}
			if c.Action == Prune || c.Action == Orphan {
				continue
			}
			for _, l := range strings.SplitAfter(c.Diff, "\n") {
				if l == "" {
					continue
				}
				switch {
				case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
					continue
				case strings.HasPrefix(l, "+"):
					l = paint(green, strings.TrimSuffix(l, "\n")) + "\n"
				case strings.HasPrefix(l, "-"):
					l = paint(red, strings.TrimSuffix(l, "\n")) + "\n"
				case strings.HasPrefix(l, "@@"):
					l = paint(cyan, strings.TrimSuffix(l, "\n")) + "\n"
				}
				b.WriteString("      " + l)
			}
		}
	}
	fmt.Fprintf(&b, "\n%s\n", paint(bold, "Summary: "+p.Summary()))
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes the plan as a pull request comment of at most
// limit bytes (CommentLimit when limit is 0): a summary table on top,
// then per owner each change in a collapsed section with its diff. What
// does not fit is left out whole, never cut inside a section, and the
// comment says how much was left out.
func (p *Plan) WriteMarkdown(w io.Writer, limit int) error {
	if limit <= 0 {
		limit = CommentLimit
	}
	var head strings.Builder
	fmt.Fprintf(&head, "### weir plan: `%s` → `%s`\n\n", mdCode(p.From), mdCode(p.To))
	fmt.Fprintf(&head, "**%s**\n\n", p.Summary())
	if len(p.Owners) > 0 {
		head.WriteString("| Cluster | Owner | Create | Update | Replace | Prune | Left |\n|---|---|--:|--:|--:|--:|--:|\n")
	}
	var rows []string
	for _, o := range p.Owners {
		owner := mdText(o.title())
		switch {
		case o.Error != "":
			owner += " ✗ does not render"
		case o.Skipped != "":
			owner += " (not compared)"
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %d | %d | %d | %d | %d |\n", mdText(o.Cluster), owner,
			o.Count(Create), o.Count(Update), o.Count(Replace), o.Count(Prune), o.Count(Orphan)))
	}
	const footerRoom = 400
	var out strings.Builder
	out.WriteString(head.String())
	shownRows := 0
	for _, r := range rows {
		if out.Len()+len(r)+footerRoom > limit/2 {
			break
		}
		out.WriteString(r)
		shownRows++
	}
	if shownRows < len(rows) {
		fmt.Fprintf(&out, "| … | %d more owners | | | | | |\n", len(rows)-shownRows)
	}
	out.WriteString("\n")

	total, shown := 0, 0
	full := false
	for _, o := range p.Owners {
		var sec strings.Builder
		fmt.Fprintf(&sec, "#### %s: %s\n\n", mdText(o.Cluster), mdText(o.title()))
		switch {
		case o.Error != "":
			fmt.Fprintf(&sec, "✗ does not render:\n\n%s\n", fence(o.Error, ""))
		case o.Skipped != "":
			fmt.Fprintf(&sec, "Not compared: %s\n\n", mdText(o.Skipped))
		}
		if full {
			total += len(o.Changes)
			continue
		}
		if out.Len()+sec.Len()+footerRoom > limit {
			full = true
			total += len(o.Changes)
			continue
		}
		out.WriteString(sec.String())
		for _, c := range o.Changes {
			total++
			block := changeBlock(c, limit/4)
			if full || out.Len()+len(block)+footerRoom > limit {
				full = true
				continue
			}
			out.WriteString(block)
			shown++
		}
	}
	if shown < total {
		fmt.Fprintf(&out, "\n> %d of %d changes are not shown: a comment holds at most %d characters. Run `weir plan` for the whole plan.\n", total-shown, total, limit)
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// changeBlock is one change as a collapsed section, its diff cut at a
// line boundary past max bytes.
func changeBlock(c Change, max int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<details><summary><code>%s</code> %s %s</summary>\n\n", symbol(c.Action), c.Action, mdText(c.ID()))
	if c.Note != "" {
		fmt.Fprintf(&b, "%s\n\n", mdText(c.Note))
	}
	if c.Diff != "" && c.Action != Orphan {
		d := c.Diff
		if len(d) > max {
			cut := strings.LastIndex(d[:max], "\n")
			if cut < 0 {
				cut = 0
			}
			d = d[:cut+1] + fmt.Sprintf("… (%d more bytes of diff not shown)\n", len(c.Diff)-cut-1)
		}
		b.WriteString(fence(d, "diff"))
		b.WriteString("\n")
	}
	b.WriteString("</details>\n\n")
	return b.String()
}

// fence wraps text in a code fence longer than any run of backticks it
// holds.
func fence(text, lang string) string {
	longest, run := 0, 0
	for _, r := range text {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	f := strings.Repeat("`", max(3, longest+1))
	return f + lang + "\n" + strings.TrimSuffix(text, "\n") + "\n" + f + "\n"
}

// mdText escapes what Markdown and HTML would read in a name or a note.
func mdText(s string) string {
	r := strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "`", "'")
	return r.Replace(s)
}

// mdCode keeps a ref inside inline code.
func mdCode(s string) string { return strings.ReplaceAll(s, "`", "'") }
