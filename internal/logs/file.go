package logs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// File is the log file of weir's controllers running in a local process:
// `weir up` writes logs/weir.log in its state folder ([UpLogFile]).
type File struct {
	// Path is the file.
	Path string
	// Poll is how often a followed file is checked for new lines; 0 means
	// 250ms.
	Poll time.Duration
}

// UpLogFile is the controllers' log in the state folder of a `weir up`
// run (PATH/.weir by default).
func UpLogFile(stateDir string) string { return filepath.Join(stateDir, "logs", "weir.log") }

// UpStateDir finds the state folder of the `weir up` run whose cluster
// kubeconfig is at kubeconfig (<state>/cluster/kubeconfig), when it has a
// controllers' log: a user who exported that kubeconfig reads that run's
// log without saying where it is.
func UpStateDir(kubeconfig string) (string, bool) {
	if kubeconfig == "" || filepath.Base(filepath.Dir(kubeconfig)) != "cluster" {
		return "", false
	}
	dir, err := filepath.Abs(filepath.Dir(filepath.Dir(kubeconfig)))
	if err != nil {
		return "", false
	}
	if fi, err := os.Stat(UpLogFile(dir)); err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return dir, true
}

// Open opens the file. Followed, the stream goes on with what is appended
// until ctx ends, and starts again at the top of a file that was
// truncated or replaced.
func (f File) Open(ctx context.Context, o OpenOptions) ([]Stream, error) {
	file, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("opening weir's log: %w", err)
	}
	if !o.Follow {
		return []Stream{{Name: f.Path, ReadCloser: file}}, nil
	}
	if o.TailLines > 0 {
		off, err := lastLines(file, o.TailLines)
		if err == nil {
			_, err = file.Seek(off, io.SeekStart)
		}
		if err != nil {
			file.Close()
			return nil, fmt.Errorf("reading weir's log %s: %w", f.Path, err)
		}
	}
	poll := f.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	return []Stream{{Name: f.Path, ReadCloser: &followedFile{ctx: ctx, path: f.Path, poll: poll, file: file}}}, nil
}

// lastLines returns the offset in r where its last n lines start.
func lastLines(r io.ReadSeeker, n int) (int64, error) {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	starts := make([]int64, 0, n+1)
	br := bufio.NewReader(r)
	var off int64
	pending := false // bytes read since the last line break
	for {
		b, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		if !pending {
			if len(starts) == n {
				starts = starts[1:]
			}
			starts = append(starts, off)
			pending = true
		}
		off++
		if b == '\n' {
			pending = false
		}
	}
	if len(starts) == 0 {
		return off, nil
	}
	return starts[0], nil
}

// followedFile reads a file as `tail -F` does.
type followedFile struct {
	ctx  context.Context
	path string
	poll time.Duration
	file *os.File
	off  int64
}

func (f *followedFile) Read(p []byte) (int, error) {
	for {
		n, err := f.file.Read(p)
		if n > 0 {
			f.off += int64(n)
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		f.reopenIfReplaced()
		select {
		case <-f.ctx.Done():
			return 0, io.EOF
		case <-time.After(f.poll):
		}
	}
}

// reopenIfReplaced starts again at the top of a file that was truncated,
// or of the new file at the path when the old one was moved away.
func (f *followedFile) reopenIfReplaced() {
	now, err := os.Stat(f.path)
	if err != nil {
		return
	}
	if cur, err := f.file.Stat(); err == nil && !os.SameFile(now, cur) {
		if next, err := os.Open(f.path); err == nil {
			f.file.Close()
			f.file, f.off = next, 0
		}
		return
	}
	if now.Size() < f.off {
		if _, err := f.file.Seek(0, io.SeekStart); err == nil {
			f.off = 0
		}
	}
}

func (f *followedFile) Close() error { return f.file.Close() }
