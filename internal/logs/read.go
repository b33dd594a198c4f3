package logs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// maxLine bounds one line of the log; the rest of a longer line is
// dropped, so that one runaway line cannot take the reader's memory.
const maxLine = 1 << 20

// Source gives the raw lines of weir's log.
type Source interface {
	// Open returns one stream per process whose log is read (a pod, a
	// file), each in the order it was written.
	Open(ctx context.Context, o OpenOptions) ([]Stream, error)
}

// OpenOptions say which part of a log a Source opens.
type OpenOptions struct {
	// Follow keeps the streams open, giving the lines written from now
	// on, until the context ends.
	Follow bool
	// Since, when set, leaves out what was written before it, where the
	// source can tell (the pods/log API can); Read filters again by the
	// entries' own times.
	Since time.Time
	// TailLines, with Follow, starts each stream that many lines before
	// its end, instead of at its start; 0 starts at the start.
	TailLines int
}

// Stream is one process's log.
type Stream struct {
	// Name says where the lines come from: a pod's name, a file's path.
	Name string
	io.ReadCloser
}

// Query says what Read reads.
type Query struct {
	// Filter keeps the entries to show.
	Filter
	// Tail keeps only the last Tail entries that the filter keeps; 0 keeps
	// all. With Follow it counts raw lines before the filter, as
	// `kubectl logs --tail` does, since a stream that is followed has no
	// end to count back from.
	Tail int
	// Follow reads on as lines are written, until the context ends.
	Follow bool
}

// Read reads src and calls emit with each entry q keeps, in the order they
// were written. A line that is not JSON is passed on as it is and never
// stops the reading. Without Follow, several streams (the pods of a
// Deployment with replicas) are merged by time when q.Tail is set, and
// given one after the other when it is not. Read stops at the first error
// emit returns, and, when following, without error once ctx ends.
func Read(ctx context.Context, src Source, q Query, emit func(Entry) error) error {
	if err := q.Validate(); err != nil {
		return err
	}
	o := OpenOptions{Follow: q.Follow, Since: q.Since}
	if q.Follow {
		o.TailLines = q.Tail
	}
	streams, err := src.Open(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range streams {
			s.Close()
		}
	}()
	if q.Follow {
		return follow(ctx, streams, q.Filter, emit)
	}
	if q.Tail <= 0 {
		for _, s := range streams {
			if err := scan(s, q.Filter, emit); err != nil {
				return err
			}
		}
		return nil
	}
	var kept []Entry
	for _, s := range streams {
		last := make([]Entry, 0, q.Tail)
		err := scan(s, q.Filter, func(e Entry) error {
			if len(last) == q.Tail {
				last = slices.Delete(last, 0, 1)
			}
			last = append(last, e)
			return nil
		})
		if err != nil {
			return err
		}
		kept = append(kept, last...)
	}
	if len(streams) > 1 {
		slices.SortStableFunc(kept, func(a, b Entry) int { return a.at.Compare(b.at) })
	}
	if len(kept) > q.Tail {
		kept = kept[len(kept)-q.Tail:]
	}
	for _, e := range kept {
		if err := emit(e); err != nil {
			return err
		}
	}
	return nil
}

// scan parses the lines of s and calls emit with those f keeps. A line
// that is not JSON takes the time of the entry before it, to be placed
// and filtered by.
func scan(s Stream, f Filter, emit func(Entry) error) error {
	br := bufio.NewReaderSize(s, 64<<10)
	var last time.Time
	for {
		line, err := readLine(br)
		if line != "" || err == nil {
			e := Parse(line)
			if e.Structured && !e.Time.IsZero() {
				last = e.Time
			} else if e.at.IsZero() {
				e.at = last
			}
			if f.Match(e) {
				if err := emit(e); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the log of %s: %w", s.Name, err)
		}
	}
}

// readLine reads one line without its line break, at most maxLine bytes of
// it. At the end of the stream it returns what is left with io.EOF.
func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if room := maxLine - len(buf); room > 0 {
			buf = append(buf, chunk[:min(len(chunk), room)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line := string(buf)
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		return line, err
	}
}

// follow reads every stream at once and calls emit, from this goroutine
// only, with each entry f keeps as it arrives.
func follow(ctx context.Context, streams []Stream, f Filter, emit func(Entry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	entries := make(chan Entry)
	errs := make(chan error, len(streams))
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- scan(s, f, func(e Entry) error {
				select {
				case entries <- e:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		}()
	}
	go func() {
		wg.Wait()
		close(entries)
	}()
	for e := range entries {
		if err := emit(e); err != nil {
			cancel()
			for range entries {
			}
			return err
		}
	}
	close(errs)
	var all []error
	for err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}
