package artifactgenerator

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// maxMergeSize bounds what is read of a YAML file that the Merge strategy
// parses: values files are small, and a parse holds the whole file in
// memory several times over.
const maxMergeSize = 16 << 20

// merge merges the YAML file p of the source into target of the artifact,
// as Helm merges values files given with several --values flags: maps are
// merged key by key, the source winning, and any other value (lists
// included) is replaced.
func (c copier) merge(p, target string) error {
	overlay, err := loadYAML(c.src, p)
	if err != nil {
		return refuse("merging '%s': %v", p, err)
	}
	base, err := loadYAML(c.out, target)
	if err != nil {
		return refuse("merging into '%s': %v", target, err)
	}
	b, err := yaml.Marshal(mergeMaps(base, overlay))
	if err != nil {
		return fmt.Errorf("merging '%s' into '%s': %w", p, target, err)
	}
	if err := c.out.WriteFile(target, b, 0o644); err != nil {
		return fmt.Errorf("writing '%s' in the artifact: %w", target, err)
	}
	return nil
}

// loadYAML reads the YAML documents of the file p under root, merged into
// one map.
func loadYAML(root *os.Root, p string) (map[string]any, error) {
	f, err := root.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lr := &io.LimitedReader{R: f, N: maxMergeSize + 1}
	docs := utilyaml.NewYAMLReader(bufio.NewReader(lr))
	out := map[string]any{}
	for {
		raw, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading YAML: %w", err)
		}
		if lr.N <= 0 {
			return nil, fmt.Errorf("the file is over %d MiB", maxMergeSize>>20)
		}
		doc := map[string]any{}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("not a YAML map: %w", err)
		}
		out = mergeMaps(out, doc)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("the file is over %d MiB", maxMergeSize>>20)
	}
	return out, nil
}

// mergeMaps returns base with overlay merged in, nested maps merged
// recursively.
func mergeMaps(base, overlay map[string]any) map[string]any {
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range overlay {
		if vm, ok := v.(map[string]any); ok {
			if bm, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(bm, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}
