package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The GitHub Action and the pre-commit hooks call weir with flags that
// exist: a renamed flag must not silently break users' CI.
func TestActionAndHooksUseFlagsWeirKnows(t *testing.T) {
	root := newRootCommand()
	check := func(where, command string, flags []string) {
		t.Helper()
		cmd, _, err := root.Find([]string{command})
		if err != nil || cmd == root {
			t.Errorf("%s runs `weir %s`, which is no command", where, command)
			return
		}
		for _, f := range flags {
			name := strings.TrimPrefix(f, "--")
			if cmd.Flags().Lookup(name) == nil && cmd.InheritedFlags().Lookup(name) == nil {
				t.Errorf("%s passes %s to `weir %s`, which has no such flag", where, f, command)
			}
		}
	}

	b, err := os.ReadFile(filepath.Join("..", "..", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Runs struct {
			Using string
			Steps []struct {
				Name string
				Run  string
			}
		}
	}
	if err := yaml.Unmarshal(b, &action); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if action.Runs.Using != "composite" {
		t.Errorf("action.yml runs %q, want a composite action", action.Runs.Using)
	}
	flag := regexp.MustCompile(`--[a-z][a-z-]+`)
	commands := 0
	for _, s := range action.Runs.Steps {
		var command string
		for _, line := range strings.Split(s.Run, "\n") {
			line = strings.TrimSpace(line)
			if m := regexp.MustCompile(`^args=\((\w+)`).FindStringSubmatch(line); m != nil {
				command = m[1]
				commands++
			}
			if command == "" || !strings.Contains(line, "args") || strings.HasPrefix(line, "#") {
				continue
			}
			check("action.yml step "+s.Name, command, flag.FindAllString(line, -1))
		}
	}
	if commands != 2 {
		t.Errorf("action.yml runs %d weir commands, want weir test and weir plan", commands)
	}

	b, err = os.ReadFile(filepath.Join("..", "..", ".pre-commit-hooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var hooks []struct {
		ID, Entry, Language string
	}
	if err := yaml.Unmarshal(b, &hooks); err != nil {
		t.Fatalf(".pre-commit-hooks.yaml: %v", err)
	}
	if len(hooks) == 0 {
		t.Fatal(".pre-commit-hooks.yaml has no hooks")
	}
	for _, h := range hooks {
		fields := strings.Fields(h.Entry)
		if len(fields) < 2 || fields[0] != "weir" {
			t.Errorf("hook %s runs %q, not weir", h.ID, h.Entry)
			continue
		}
		check("hook "+h.ID, fields[1], flag.FindAllString(h.Entry, -1))
	}
}
