package redact_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/weirhq/weir/internal/redact"
)

func TestMaskReplacesEveryFormOfASecretValue(t *testing.T) {
	var s redact.Secrets
	s.Add("hunter2-token", "s3cr\"et\nline-two")
	cases := map[string]string{
		`Invalid value: "hunter2-token": a valid label must be ...`:           `Invalid value: "[redacted]": a valid label must be ...`,
		`ports[containerPort="hunter2-token"]`:                                `ports[containerPort="[redacted]"]`,
		"data: " + base64.StdEncoding.EncodeToString([]byte("hunter2-token")): "data: [redacted]",
		`value "s3cr\"et\nline-two" is invalid`:                               `value "[redacted]" is invalid`,
		"only line-two shows":                                                 "only [redacted] shows",
		"nothing secret here":                                                 "nothing secret here",
	}
	for in, want := range cases {
		if got := s.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskPrefersTheLongerOfOverlappingValues(t *testing.T) {
	var s redact.Secrets
	s.Add("pass", "password-1234")
	if got := s.Mask("x=password-1234 y=pass"); got != "x=[redacted] y=[redacted]" {
		t.Errorf("got %q", got)
	}
}

func TestShortValuesAndCommonWordsAreNotMasked(t *testing.T) {
	var s redact.Secrets
	s.Add("1", "abc", "true", "False", "null", "   ", "")
	if n := s.Len(); n != 0 {
		t.Errorf("%d values recorded, want none", n)
	}
	msg := "replicas: 1, abc, true, False, null"
	if got := s.Mask(msg); got != msg {
		t.Errorf("got %q", got)
	}
	s.Add("1234")
	if got := s.Mask("port 1234"); got != "port [redacted]" {
		t.Errorf("a value of %d characters is not masked: %q", redact.MinLength, got)
	}
}

func TestAddDocumentRecordsNestedScalars(t *testing.T) {
	var s redact.Secrets
	s.AddDocument("db:\n  password: nested-pass\n  port: 15432\n  hosts: [alpha-host, beta-host]\nenabled: true\n")
	msg := "nested-pass 15432 alpha-host beta-host true db password"
	want := "[redacted] [redacted] [redacted] [redacted] true db password"
	if got := s.Mask(msg); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNilSecretsMaskNothing(t *testing.T) {
	var s *redact.Secrets
	s.Add("hunter2-token")
	if got := s.Mask("hunter2-token"); got != "hunter2-token" {
		t.Errorf("got %q", got)
	}
	err := errors.New("boom")
	if s.Error(err) != err {
		t.Error("a nil set changed the error")
	}
}

func TestErrorIsMaskedAndStillUnwraps(t *testing.T) {
	var s redact.Secrets
	s.Add("hunter2-token")
	err := s.Error(fmt.Errorf("applying: %w: value hunter2-token", context.DeadlineExceeded))
	if strings.Contains(err.Error(), "hunter2-token") || !strings.Contains(err.Error(), redact.Redacted) {
		t.Errorf("error not masked: %q", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("the masked error does not unwrap to the original")
	}
	if got := fmt.Sprintf("%+v", err); strings.Contains(got, "hunter2-token") {
		t.Errorf("%%+v shows the value: %q", got)
	}
}
