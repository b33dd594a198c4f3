package helmrepository_test

import (
	"strings"
	"testing"

	"github.com/weirhq/weir/internal/source/helmrepository"
)

func TestNormalizeURL(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"https://charts.example.com", "https://charts.example.com/", ""},
		{"https://charts.example.com/stable///", "https://charts.example.com/stable/", ""},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/", ""},
		{"oci://ghcr.io/org/charts", "", "scheme 'oci' is not supported"},
		{"https://", "", "the URL has no host"},
		{"https://user:s3cret@exa mple.com", "", "the URL does not parse"},
	}
	for _, c := range cases {
		got, err := helmrepository.NormalizeURL(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("NormalizeURL(%q) = %q, %v; want an error saying %q without the password", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("NormalizeURL(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestRedactURLHidesPasswords(t *testing.T) {
	for in, want := range map[string]string{
		"https://charts.example.com/":            "https://charts.example.com/",
		"https://user:s3cret@charts.example.com": "https://user:xxxxx@charts.example.com",
		"https://user:s3cret@exa mple.com":       "xxxxx@exa mple.com",
	} {
		if got := helmrepository.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadIndexDropsInvalidEntriesAndSorts(t *testing.T) {
	idx, err := helmrepository.LoadIndex([]byte(`apiVersion: v1
entries:
  app:
  - name: app
    version: 1.0.0
    apiVersion: v2
  - name: app
    version: 2.0.0
    apiVersion: v2
  - name: app
    version: ""
`))
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, cv := range idx.Entries["app"] {
		versions = append(versions, cv.Version)
	}
	if strings.Join(versions, ",") != "2.0.0,1.0.0" {
		t.Errorf("versions %v; want 2.0.0,1.0.0 (the entry without a version dropped)", versions)
	}
	if _, err := helmrepository.LoadIndex([]byte("entries: {}\n")); err == nil || !strings.Contains(err.Error(), "no API version") {
		t.Errorf("an index without apiVersion: %v", err)
	}
	if _, err := helmrepository.LoadIndex([]byte("<html>not an index</html>")); err == nil {
		t.Error("HTML was taken for an index")
	}
}
