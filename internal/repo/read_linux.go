package repo

import (
	"fmt"
	"io/fs"
	"syscall"
)

// readRegular reads the regular file at name in four system calls (open,
// fstat, read, close), where os.Lstat and os.ReadFile take about eleven
// (the runtime tries to register each file with its poller); a repository
// walk reads thousands of files. A symlink is refused, not followed (it
// could leave the root): O_NOFOLLOW makes opening one fail. O_NONBLOCK
// keeps a FIFO from blocking the open; it is then refused by fstat, as is
// any file that is not regular or is larger than maxFile.
func readRegular(name string) ([]byte, error) {
	data, _, err := readRegularStat(name)
	return data, err
}

// readRegularStat is readRegular that also returns the stat of what it
// read, for the index.
func readRegularStat(name string) ([]byte, fileStat, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.ELOOP {
		return nil, fileStat{}, fmt.Errorf("%s %w", name, errNotRegular)
	}
	if err != nil {
		return nil, fileStat{}, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fileStat{}, &fs.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, fileStat{}, fmt.Errorf("%s %w", name, errNotRegular)
	}
	if st.Size > maxFile {
		return nil, fileStat{}, fmt.Errorf("%s is larger than %d MiB", name, maxFile>>20)
	}
	// The size announced is read (a file changing meanwhile is a race
	// os.ReadFile has too); a file announcing none, as some virtual ones
	// do, is read to its end.
	size := int(st.Size)
	data := make([]byte, 0, max(size, 512))
	for size == 0 || len(data) < size {
		if len(data) == cap(data) {
			if len(data) > maxFile {
				return nil, fileStat{}, fmt.Errorf("%s is larger than %d MiB", name, maxFile>>20)
			}
			data = append(data, 0)[:len(data)]
		}
		n, err := syscall.Read(fd, data[len(data):cap(data)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, fileStat{}, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if n == 0 {
			break
		}
		data = data[:len(data)+n]
	}
	return data, statOf(&st), nil
}

// lstat returns the stat of the file at name, not following a symlink, in
// one system call; ok is false when it is not a regular file.
func lstat(name string) (st fileStat, ok bool) {
	var sys syscall.Stat_t
	for {
		err := syscall.Lstat(name, &sys)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || sys.Mode&syscall.S_IFMT != syscall.S_IFREG {
			return fileStat{}, false
		}
		return statOf(&sys), true
	}
}

// lstatDir returns the stat of the folder at name, not following a
// symlink; ok is false when it is not a folder.
func lstatDir(name string) (st fileStat, ok bool) {
	o := lstatObserve(name)
	return o.stat, o.kind == obsDir
}

// lstatObserve returns what lstat says of name, whatever it is: a file,
// a folder, something else (a symlink, a device) or nothing.
func lstatObserve(name string) observation {
	var sys syscall.Stat_t
	for {
		err := syscall.Lstat(name, &sys)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return observation{} // absent, or not reachable: either way, nothing read
		}
		kind := obsOther
		switch sys.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			kind = obsFile
		case syscall.S_IFDIR:
			kind = obsDir
		}
		return observation{kind: kind, stat: statOf(&sys)}
	}
}

// statOf is what the index compares of a file's stat.
func statOf(sys *syscall.Stat_t) fileStat {
	return fileStat{
		Size:  sys.Size,
		Mtime: sys.Mtim.Nano(),
		Ctime: sys.Ctim.Nano(),
		Ino:   uint64(sys.Ino),
		Dev:   uint64(sys.Dev),
	}
}

// statIndexed tells whether lstat answers, and so whether the index is used.
const statIndexed = true
