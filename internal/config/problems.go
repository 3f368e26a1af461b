package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a config: where (file, line, path) and what.
type Problem struct {
	Source  string // file name; may be empty
	Line    int    // 0 when unknown
	Path    string // e.g. regions[1].kafka.brokers; empty for the whole file
	Message string
}

// String renders "file:line: path: message", leaving out unknown parts.
func (p Problem) String() string {
	var b strings.Builder
	if p.Source != "" {
		b.WriteString(p.Source)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Errors is every problem found, in file order. It is the error Parse, Load
// and Validate return; use errors.As to get the list.
type Errors []Problem

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// collector gathers problems with the line of each path when known.
type collector struct {
	source string
	lines  map[string]int
	probs  Errors
}

func (c *collector) addf(path, format string, args ...any) {
	c.probs = append(c.probs, Problem{Source: c.source, Line: c.lineOf(path), Path: path, Message: fmt.Sprintf(format, args...)})
}

// lineOf finds the line of path, or of its nearest ancestor that has one.
func (c *collector) lineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := c.lines[p]; ok {
			return l
		}
	}
	return 0
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

func (c *collector) err() error {
	if len(c.probs) == 0 {
		return nil
	}
	sort.SliceStable(c.probs, func(i, j int) bool { return c.probs[i].Line < c.probs[j].Line })
	return c.probs
}
