// Package safeio opens user-given files without the surprises of special files, and guards the
// paths the commands write to: nothing that is an input, or that skipgraph did not write, is
// replaced.
package safeio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is the cause of a refused open of a named pipe, device, socket or folder.
var ErrNotRegular = errors.New("not a regular file")

// Open opens path for reading when it is a regular file (symbolic links are followed). A named
// pipe, device or socket is refused without blocking: the file is opened with O_NONBLOCK, which
// returns at once for a pipe with no writer, and checked with fstat before anything is read.
// Errors are *fs.PathError with Op "open"; a refused special file has a cause that wraps
// ErrNotRegular and says what the file is.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: notRegular(st.Mode())}
	}
	// reads of a regular file never block; clear the flag so that nothing downstream sees it
	if err := setBlocking(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile reads the whole regular file at path (see Open).
func ReadFile(path string) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// CheckRegular reports an error unless path is a regular file, without opening it: for paths a
// library opens itself. Its errors are those of Open.
func CheckRegular(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return &fs.PathError{Op: "open", Path: path, Err: notRegular(st.Mode())}
	}
	return nil
}

// notRegular names what a non-regular file is.
func notRegular(m fs.FileMode) error {
	kind := "a special file"
	switch {
	case m.IsDir():
		kind = "a folder"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("%w (%s); give a plain file", ErrNotRegular, kind)
}

func setBlocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}
