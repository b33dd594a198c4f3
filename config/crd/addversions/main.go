// Command addversions adds to the CRDs that controller-gen generated under
// config/crd the API versions that Flux's API modules mark skipversion but
// that real repositories still use: source.toolkit.fluxcd.io/v1beta2
// OCIRepository, HelmRepository and HelmChart. Each added version is served,
// not stored, has the schema of the stored version and is marked deprecated,
// as in the CRDs Flux ships; with conversion None the API server serves the
// stored objects under either version.
//
// It also gives every duration field of every CRD a validation rule that
// refuses durations too long for Go's time.Duration (see durationRule): Flux's
// pattern lets them through, and one such object would stop the controllers
// from listing its kind. `make generate` runs it after controller-gen:
//
//	go run ./config/crd/addversions config/crd
//
// Running it twice changes nothing.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// served is the table of versions to add: in file, a copy of version from
// named version.
var served = []struct{ file, from, version, kind string }{
	{"source.toolkit.fluxcd.io_ocirepositories.yaml", "v1", "v1beta2", "OCIRepository"},
	{"source.toolkit.fluxcd.io_helmrepositories.yaml", "v1", "v1beta2", "HelmRepository"},
	{"source.toolkit.fluxcd.io_helmcharts.yaml", "v1", "v1beta2", "HelmChart"},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: addversions CRD_FOLDER")
		os.Exit(2)
	}
	for _, s := range served {
		if err := addVersion(filepath.Join(os.Args[1], s.file), s.from, s.version, s.kind); err != nil {
			fmt.Fprintln(os.Stderr, "addversions:", err)
			os.Exit(1)
		}
	}
	files, err := filepath.Glob(filepath.Join(os.Args[1], "*.yaml"))
	if err != nil || len(files) == 0 {
		fmt.Fprintln(os.Stderr, "addversions: no CRD in", os.Args[1])
		os.Exit(1)
	}
	for _, f := range files {
		if _, err := addDurationRules(f); err != nil {
			fmt.Fprintln(os.Stderr, "addversions:", err)
			os.Exit(1)
		}
	}
}

// addVersion rewrites the CRD at path with version added (or replaced) as a
// served, deprecated copy of from. The file is read and written as a map, so
// that the output keeps controller-gen's layout byte for byte.
func addVersion(path, from, version, kind string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the CRD: %w", err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	spec, _ := crd["spec"].(map[string]any)
	versions, _ := spec["versions"].([]any)
	if versions == nil {
		return fmt.Errorf("%s has no spec.versions", path)
	}
	var src map[string]any
	kept := versions[:0]
	for _, v := range versions {
		m, _ := v.(map[string]any)
		switch m["name"] {
		case from:
			src = m
		case version:
			continue // replaced below
		}
		kept = append(kept, v)
	}
	if src == nil {
		return fmt.Errorf("%s has no version %s to copy", path, from)
	}
	if src["storage"] != true {
		return errors.New(path + ": the version copied must be the stored one, so that no conversion is needed")
	}
	// A deep copy through JSON: the two versions must not share maps.
	b, err := yaml.Marshal(src)
	if err != nil {
		return err
	}
	var added map[string]any
	if err := yaml.Unmarshal(b, &added); err != nil {
		return err
	}
	added["name"] = version
	added["served"] = true
	added["storage"] = false
	added["deprecated"] = true
	added["deprecationWarning"] = fmt.Sprintf("%s %s is deprecated, upgrade to %s", version, kind, from)
	spec["versions"] = append(kept, added)

	out, err := yaml.Marshal(crd)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.WriteFile(path, append([]byte("---\n"), out...), 0o644); err != nil {
		return fmt.Errorf("writing the CRD: %w", err)
	}
	return nil
}
