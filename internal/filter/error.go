package filter

import (
	"fmt"
	"strings"
)

// UsageError is a bad filter flag. The CLI reports it on one line and exits
// with status 2, like other command-line mistakes.
type UsageError struct {
	Flag  string // without dashes, e.g. "proto"
	Value string // as given
	Msg   string // what is wrong or what is valid
}

func (e *UsageError) Error() string {
	// Messages can embed text from elsewhere (netns errors); keep one line.
	msg := strings.Join(strings.Fields(e.Msg), " ")
	if e.Flag == "" {
		return msg // a flag parser error (cli wraps them): it names the flag itself
	}
	return fmt.Sprintf("invalid --%s %q: %s", e.Flag, e.Value, msg)
}

func usage(flag, value, format string, args ...any) *UsageError {
	return &UsageError{Flag: flag, Value: value, Msg: fmt.Sprintf(format, args...)}
}
