package redact

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Redacted replaces a secret value in a message.
const Redacted = "[redacted]"

// MinLength is the length under which a value is not masked.
const MinLength = 4

// Secrets is a set of secret values to mask. The zero value is an empty
// set, and a nil *Secrets masks nothing. It is safe for concurrent use.
type Secrets struct {
	mu       sync.Mutex
	values   map[string]struct{}
	replacer *strings.Replacer // nil when values changed since it was built
}

// Add records values to mask. Each is masked as written, with its
// surrounding space trimmed, line by line when it has several lines, in
// base64 and in the escaped forms Go and JSON quote it with.
func (s *Secrets) Add(values ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		s.addForms(v)
		if strings.Contains(v, "\n") {
			for _, line := range strings.Split(v, "\n") {
				s.addForms(line)
			}
		}
	}
}

// AddDocument records a value that may be a YAML or JSON document (a
// values.yaml in a Secret, a decrypted file): the whole text and every
// scalar in it, at any depth. Text that is not a document is recorded
// as Add records it.
func (s *Secrets) AddDocument(text string) {
	if s == nil {
		return
	}
	s.Add(text)
	var doc any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return
	}
	s.AddScalars(doc)
}

// AddScalars records every scalar of a decoded YAML or JSON value, at any
// depth, in the form fmt prints it (8080, not "8080.0"). Map keys are
// not recorded.
func (s *Secrets) AddScalars(v any) {
	if s == nil {
		return
	}
	switch t := v.(type) {
	case map[string]any:
		for _, e := range t {
			s.AddScalars(e)
		}
	case []any:
		for _, e := range t {
			s.AddScalars(e)
		}
	case string:
		s.Add(t)
	case float64:
		s.Add(strconv.FormatFloat(t, 'f', -1, 64))
	case nil:
	default:
		s.Add(fmt.Sprint(t))
	}
}

func (s *Secrets) addForms(v string) {
	s.addOne(v)
	s.addOne(strings.TrimSpace(v))
	if !maskable(strings.TrimSpace(v)) {
		return
	}
	s.addOne(base64.StdEncoding.EncodeToString([]byte(v)))
	if q := strconv.Quote(v); q[1:len(q)-1] != v {
		s.addOne(q[1 : len(q)-1])
	}
	if j, err := json.Marshal(v); err == nil && string(j[1:len(j)-1]) != v {
		s.addOne(string(j[1 : len(j)-1]))
	}
}

func (s *Secrets) addOne(v string) {
	if !maskable(v) {
		return
	}
	if s.values == nil {
		s.values = map[string]struct{}{}
	}
	if _, ok := s.values[v]; !ok {
		s.values[v] = struct{}{}
		s.replacer = nil
	}
}

// maskable tells whether a value is long enough, and not a word too
// common in messages, to be masked.
func maskable(v string) bool {
	if len(strings.TrimSpace(v)) < MinLength {
		return false
	}
	switch strings.ToLower(v) {
	case "true", "false", "null":
		return false
	}
	return true
}

// Len is the number of values (in all their forms) recorded.
func (s *Secrets) Len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

// Mask replaces every recorded value in msg with Redacted. Where two
// values overlap, the longer one is masked.
func (s *Secrets) Mask(msg string) string {
	if s == nil || msg == "" {
		return msg
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.values) == 0 {
		return msg
	}
	if s.replacer == nil {
		vals := make([]string, 0, len(s.values))
		for v := range s.values {
			vals = append(vals, v)
		}
		// strings.Replacer prefers the pair given first where several
		// match at one position: longest first masks whole values.
		sort.Slice(vals, func(i, j int) bool {
			if len(vals[i]) != len(vals[j]) {
				return len(vals[i]) > len(vals[j])
			}
			return vals[i] < vals[j]
		})
		pairs := make([]string, 0, 2*len(vals))
		for _, v := range vals {
			pairs = append(pairs, v, Redacted)
		}
		s.replacer = strings.NewReplacer(pairs...)
	}
	return s.replacer.Replace(msg)
}

// Error returns err with its message masked. The masked error still wraps
// err, so that errors.Is and errors.As see through it; its own message is
// the only one it shows.
func (s *Secrets) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	masked := s.Mask(msg)
	if masked == msg {
		return err
	}
	return &maskedError{msg: masked, err: err}
}

// MaskConditions masks the messages of conditions in place.
func (s *Secrets) MaskConditions(conditions []metav1.Condition) {
	for i := range conditions {
		conditions[i].Message = s.Mask(conditions[i].Message)
	}
}

type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }
