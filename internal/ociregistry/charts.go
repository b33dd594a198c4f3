package ociregistry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"sigs.k8s.io/yaml"
)

// ChartsRepository is the repository folder PushCharts pushes charts
// under: a chart named app is oci://HOST/charts/app.
const ChartsRepository = "charts"

// Chart is a chart pushed to a registry.
type Chart struct {
	// Name and Version are those of Chart.yaml; the version is the tag.
	Name, Version string
	// Dir is the chart folder it was packaged from.
	Dir string
	// URL is the OCIRepository url of the chart, without the tag.
	URL string
	// Digest is the manifest digest ("sha256:<hex>").
	Digest string
}

// PushCharts pushes every chart folder directly under dir (a folder holding
// a Chart.yaml) as ChartsRepository/<name>:<version>, in the order of the
// folders' names. Other entries are left alone; a chart that does not load
// fails the whole push, naming the chart.
func (r *Registry) PushCharts(ctx context.Context, dir string) ([]Chart, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the charts folder: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var charts []Chart
	for _, e := range entries {
		chartDir := filepath.Join(dir, e.Name())
		if !e.IsDir() || !isFile(filepath.Join(chartDir, chartutil.ChartfileName)) {
			continue
		}
		meta, tgz, err := PackageChart(chartDir)
		if err != nil {
			return charts, err
		}
		repo := ChartsRepository + "/" + meta.Name
		digest, err := r.pushChart(ctx, repo, meta.Version, meta, tgz)
		if err != nil {
			return charts, fmt.Errorf("pushing chart %s: %w", meta.Name, err)
		}
		charts = append(charts, Chart{Name: meta.Name, Version: meta.Version, Dir: chartDir, URL: r.URL(repo), Digest: digest})
	}
	return charts, nil
}

// PushChart packages the chart in chartDir as PackageChart does and pushes
// it to repo:tag as `helm push` does: config Chart.yaml as JSON, one layer
// of the chart's .tgz, under Helm's media types. It returns the manifest
// digest; the same chart files always give the same digest.
func (r *Registry) PushChart(ctx context.Context, repo, tag, chartDir string) (string, error) {
	meta, tgz, err := PackageChart(chartDir)
	if err != nil {
		return "", err
	}
	return r.pushChart(ctx, repo, tag, meta, tgz)
}

// PushChartArchive pushes a packaged chart (a .tgz as `helm package`
// writes it) to repo:tag as `helm push` does, with the metadata of the
// Chart.yaml it holds. Nothing else in the archive is checked, so that a
// test can push a chart Helm would refuse to load. It returns the manifest
// digest.
func (r *Registry) PushChartArchive(ctx context.Context, repo, tag string, tgz []byte) (string, error) {
	meta, err := chartMetadata(tgz)
	if err != nil {
		return "", err
	}
	return r.pushChart(ctx, repo, tag, meta, tgz)
}

// maxChartfileSize bounds the Chart.yaml read from an archive.
const maxChartfileSize = 1 << 20

// chartMetadata reads <name>/Chart.yaml from a packaged chart.
func chartMetadata(tgz []byte) (*chart.Metadata, error) {
	gz, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, fmt.Errorf("reading the chart package: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the chart package holds no <name>/Chart.yaml")
		}
		if err != nil {
			return nil, fmt.Errorf("reading the chart package: %w", err)
		}
		parts := strings.Split(path.Clean(h.Name), "/")
		if h.Typeflag != tar.TypeReg || len(parts) != 2 || parts[1] != chartutil.ChartfileName {
			continue
		}
		raw, err := io.ReadAll(io.LimitReader(tr, maxChartfileSize+1))
		if err != nil {
			return nil, fmt.Errorf("reading %s in the chart package: %w", h.Name, err)
		}
		if len(raw) > maxChartfileSize {
			return nil, fmt.Errorf("%s in the chart package is larger than %d bytes", h.Name, maxChartfileSize)
		}
		meta := &chart.Metadata{}
		if err := yaml.Unmarshal(raw, meta); err != nil {
			return nil, fmt.Errorf("parsing %s in the chart package: %w", h.Name, err)
		}
		if meta.Name == "" || meta.Version == "" {
			return nil, fmt.Errorf("%s in the chart package needs a name and a version", h.Name)
		}
		return meta, nil
	}
}

func (r *Registry) pushChart(ctx context.Context, repo, tag string, meta *chart.Metadata, tgz []byte) (string, error) {
	config, err := json.Marshal(meta)
	if err != nil {
		return "", fmt.Errorf("encoding the metadata of chart %s: %w", meta.Name, err)
	}
	// Those of helm push, less the creation time, which would change the
	// digest of the same chart at every push.
	annotations := map[string]string{
		"org.opencontainers.image.title":   meta.Name,
		"org.opencontainers.image.version": meta.Version,
	}
	if meta.Description != "" {
		annotations["org.opencontainers.image.description"] = meta.Description
	}
	return r.push(ctx, repo, tag, config, HelmConfigMediaType, tgz, HelmChartMediaType, annotations)
}

// packagedModTime is the time of every file in a packaged chart, so that
// the same files give the same archive (Helm would use the files' times).
// Chart.lock keeps its own time, which is part of its content.
var packagedModTime = time.Unix(0, 0).UTC()

// PackageChart loads the chart in dir with Helm's loader (honouring
// .helmignore, bounded as Helm bounds it) and packages it as
// `helm package` does, files under <name>/. It returns the chart's
// metadata and the .tgz.
func PackageChart(dir string) (*chart.Metadata, []byte, error) {
	c, err := loader.LoadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("loading the chart in %s: %w", dir, err)
	}
	if c.Metadata == nil || c.Metadata.Name == "" || c.Metadata.Version == "" {
		return nil, nil, fmt.Errorf("the chart in %s needs a name and a version in Chart.yaml", dir)
	}
	setModTimes(c)
	// Helm writes a package only to a file: to a temporary folder, removed
	// on every path.
	tmp, err := os.MkdirTemp("", "weir-chart-")
	if err != nil {
		return nil, nil, fmt.Errorf("packaging chart %s: %w", c.Name(), err)
	}
	defer os.RemoveAll(tmp)
	file, err := chartutil.Save(c, tmp)
	if err != nil {
		return nil, nil, fmt.Errorf("packaging chart %s: %w", c.Name(), err)
	}
	tgz, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("packaging chart %s: %w", c.Name(), err)
	}
	return c.Metadata, tgz, nil
}

// setModTimes sets the time of every file of c and its subcharts to
// packagedModTime.
func setModTimes(c *chart.Chart) {
	c.ModTime = packagedModTime
	c.SchemaModTime = packagedModTime
	for _, files := range [][]*common.File{c.Raw, c.Templates, c.Files} {
		for _, f := range files {
			f.ModTime = packagedModTime
		}
	}
	for _, dep := range c.Dependencies() {
		setModTimes(dep)
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
