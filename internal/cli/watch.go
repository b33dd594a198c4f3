package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

// change is one object of a kind as a watch saw it change.
type change struct {
	kind control.Kind
	obj  control.Object
}

// watchObjects is `weir get --watch`: it prints the objects the query asks
// for, as get does, then one line (or with -o json|yaml, one document) per
// change, until the command's context ends (an interrupt) or --timeout
// passes; either ends it without error. A kind's header is printed with
// its first row, so that a kind with no objects yet prints nothing until
// one appears.
func (o *getOptions) watchObjects(cmd *cobra.Command, c client.Client, q *getQuery, what string, withKind bool) error {
	wc, ok := c.(client.WithWatch)
	if !ok {
		return errors.New("--watch: this client cannot watch the cluster")
	}
	ctx := cmd.Context()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	p := &watchPrinter{out: cmd.OutOrStdout(), o: o, scheme: c.Scheme(), withKind: withKind, tables: map[string]*table{}}
	changes := make(chan change)
	failed := make(chan error, len(q.kinds))
	listed := 0
	for _, k := range q.kinds {
		objs, resourceVersion, err := listForWatch(ctx, c, k, q)
		if err != nil {
			return err
		}
		listed += len(objs)
		if err := p.first(k, objs); err != nil {
			return err
		}
		go func() {
			if err := watchKind(ctx, wc, k, q, resourceVersion, changes); err != nil {
				failed <- err
			}
		}()
	}
	if listed == 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "no %s found in %s yet: watching for changes\n", what, o.where())
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed:
			return err
		case ch := <-changes:
			if !q.keeps(ch.kind, ch.obj) {
				continue
			}
			if err := p.print(ch.kind, ch.obj); err != nil {
				return err
			}
		}
	}
}

// listForWatch lists the objects of kind k that q keeps, sorted, and the
// resource version to watch from so that no change falls between the list
// and the watch.
func listForWatch(ctx context.Context, c client.Client, k control.Kind, q *getQuery) ([]control.Object, string, error) {
	list := k.NewList()
	if err := c.List(ctx, list, q.listOptions()...); err != nil {
		return nil, "", fmt.Errorf("listing %s objects: %w", k.Name, err)
	}
	items, err := apimeta.ExtractList(list)
	if err != nil {
		return nil, "", fmt.Errorf("reading the list of %s objects: %w", k.Name, err)
	}
	var objs []control.Object
	for _, item := range items {
		if obj, ok := item.(control.Object); ok && q.keeps(k, obj) {
			objs = append(objs, obj)
		}
	}
	slices.SortFunc(objs, func(a, b control.Object) int {
		return strings.Compare(a.GetNamespace()+"/"+a.GetName(), b.GetNamespace()+"/"+b.GetName())
	})
	return objs, list.GetResourceVersion(), nil
}

// watchKind sends the changes to the objects of kind k to changes until
// ctx ends. The API server closes a watch now and then: it is opened again
// from the last version seen; one that has expired (410 Gone) is opened
// from the current state, which sends every object again.
func watchKind(ctx context.Context, wc client.WithWatch, k control.Kind, q *getQuery, resourceVersion string, changes chan<- change) error {
	for ctx.Err() == nil {
		opts := append(q.listOptions(), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: resourceVersion}})
		w, err := wc.Watch(ctx, k.NewList(), opts...)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watching %s objects: %w", k.Name, err)
		}
		resourceVersion, err = forward(ctx, w, k, resourceVersion, changes)
		w.Stop()
		if err != nil {
			return err
		}
	}
	return nil
}

// forward sends w's changes on until w closes or ctx ends, and returns the
// version to watch from next.
func forward(ctx context.Context, w watch.Interface, k control.Kind, resourceVersion string, changes chan<- change) (string, error) {
	for {
		select {
		case <-ctx.Done():
			return resourceVersion, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return resourceVersion, nil
			}
			switch ev.Type {
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) || statusCode(err) == http.StatusGone {
					return "", nil
				}
				return "", fmt.Errorf("watching %s objects: %w", k.Name, err)
			case watch.Bookmark:
				if obj, ok := ev.Object.(metav1.Object); ok {
					resourceVersion = obj.GetResourceVersion()
				}
				continue
			}
			obj, ok := ev.Object.(control.Object)
			if !ok {
				continue
			}
			resourceVersion = obj.GetResourceVersion()
			select {
			case changes <- change{kind: k, obj: obj}:
			case <-ctx.Done():
				return resourceVersion, nil
			}
		}
	}
}

func statusCode(err error) int32 {
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		return s.Status().Code
	}
	return 0
}

// watchPrinter prints what `get --watch` sees: rows in each kind's columns,
// or documents with -o json|yaml.
type watchPrinter struct {
	out      io.Writer
	o        *getOptions
	scheme   *runtime.Scheme
	withKind bool
	tables   map[string]*table // by kind, once its header is printed
}

// first prints the objects of kind k as a table (or documents), in get's
// format.
func (p *watchPrinter) first(k control.Kind, objs []control.Object) error {
	if len(objs) == 0 {
		return nil
	}
	if p.o.output == "json" || p.o.output == "yaml" {
		for _, obj := range objs {
			if err := p.document(obj); err != nil {
				return err
			}
		}
		return nil
	}
	cols := columnsOf(k, p.o.output == "wide")
	now := time.Now()
	rows := [][]string{cols.heading(p.o.allNamespaces)}
	for _, obj := range objs {
		rows = append(rows, cols.cells(k, obj, now, p.o.allNamespaces, p.withKind))
	}
	t := newTable(append(rows, cols.widestRow(p.o.allNamespaces)))
	p.tables[k.Name] = t
	for _, row := range rows {
		if _, err := fmt.Fprintln(p.out, t.line(row)); err != nil {
			return err
		}
	}
	if p.withKind {
		// One table per kind, as get all prints them; changes follow.
		_, err := fmt.Fprintln(p.out)
		return err
	}
	return nil
}

// print prints one changed object: its row, after its kind's header if
// this is the kind's first.
func (p *watchPrinter) print(k control.Kind, obj control.Object) error {
	if p.o.output == "json" || p.o.output == "yaml" {
		return p.document(obj)
	}
	cols := columnsOf(k, p.o.output == "wide")
	row := cols.cells(k, obj, time.Now(), p.o.allNamespaces, p.withKind)
	t, ok := p.tables[k.Name]
	if !ok {
		header := cols.heading(p.o.allNamespaces)
		t = newTable([][]string{header, row, cols.widestRow(p.o.allNamespaces)})
		p.tables[k.Name] = t
		if _, err := fmt.Fprintln(p.out, t.line(header)); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(p.out, t.line(row))
	return err
}

// document prints obj alone, as `kubectl get -w -o yaml` does: YAML
// documents separated by "---", JSON objects one after the other.
func (p *watchPrinter) document(obj control.Object) error {
	u, err := objectMap(p.scheme, obj)
	if err != nil {
		return err
	}
	if p.o.output == "yaml" {
		if _, err := fmt.Fprintln(p.out, "---"); err != nil {
			return err
		}
	}
	return printDocument(p.out, p.o.output, u)
}
