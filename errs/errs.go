// Package errs marks errors caused by the user's input (a bad file, flag or value), which the CLI
// reports with exit code 2, apart from internal failures (exit code 1).
package errs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// inputError marks its wrapped error as the user's input's fault.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// Input returns an input error with a formatted message (fmt.Errorf semantics, %w allowed).
// The message should name the file, node or value at fault and say what to do.
func Input(format string, args ...any) error {
	return &inputError{fmt.Errorf(format, args...)}
}

// wrapped is an error whose message is written apart from its cause (a cause reworded for one
// line, say) and which still unwraps to that cause.
type wrapped struct {
	msg   string
	cause error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.cause }

// Wrap returns an error with the formatted message (fmt.Sprintf semantics, no %w) that unwraps
// to cause, for a message that words the cause itself, so that errors.Is and errors.As still
// find it. It keeps cause's input mark: Wrap of an input error is an input error.
func Wrap(cause error, format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), cause: cause}
}

// AsInput marks an existing error as an input error; nil stays nil.
func AsInput(err error) error {
	if err == nil || IsInput(err) {
		return err
	}
	return &inputError{err}
}

// IsInput reports whether err, or an error it wraps, is an input error.
func IsInput(err error) bool {
	var ie *inputError
	return errors.As(err, &ie)
}

// ExitCode returns the process exit code for err: 0 for nil, 2 for input errors, 1 otherwise.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case IsInput(err):
		return 2
	}
	return 1
}

// Path renders a file path for a one-line message: as it is, or quoted (Go syntax) when it
// holds a line break or another control character.
func Path(p string) string {
	if strings.ContainsFunc(p, unicode.IsControl) {
		return strconv.Quote(p)
	}
	return p
}
