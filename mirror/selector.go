package mirror

import (
	"fmt"
	"regexp"
	"strings"
)

// Selector decides which source topics a flow mirrors. Internal topics
// (names starting with "__" or ending in ".internal") and regionsync's own
// bookkeeping topics are never mirrored, whatever the patterns say.
type Selector struct {
	include, exclude []*regexp.Regexp
}

// NewSelector compiles include and exclude patterns, each anchored to match
// the whole topic name. An empty include list means every topic.
func NewSelector(include, exclude []string) (*Selector, error) {
	s := &Selector{}
	if len(include) == 0 {
		include = []string{".*"}
	}
	for _, group := range []struct {
		name string
		in   []string
		out  *[]*regexp.Regexp
	}{{"include", include, &s.include}, {"exclude", exclude, &s.exclude}} {
		for i, p := range group.in {
			re, err := regexp.Compile("^(?:" + p + ")$")
			if err != nil {
				return nil, fmt.Errorf("mirror: topics.%s[%d] %q: %w", group.name, i, p, err)
			}
			*group.out = append(*group.out, re)
		}
	}
	return s, nil
}

// Internal reports whether topic is never mirrored.
func Internal(topic string) bool {
	return strings.HasPrefix(topic, "__") || strings.HasSuffix(topic, ".internal") || isRegionsyncTopic(topic)
}

// Match reports whether topic is mirrored. The heartbeat topic always is.
func (s *Selector) Match(topic string) bool {
	if topic == HeartbeatTopic {
		return true
	}
	if Internal(topic) {
		return false
	}
	for _, re := range s.exclude {
		if re.MatchString(topic) {
			return false
		}
	}
	for _, re := range s.include {
		if re.MatchString(topic) {
			return true
		}
	}
	return false
}
