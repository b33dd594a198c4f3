package repo

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// roundTrip is what utilyaml.Unmarshal makes of a document, as Decode
// took it before decodeObject: the reference decodeObject must match.
func roundTrip(doc []byte) (map[string]any, bool) {
	var obj map[string]any
	if err := utilyaml.Unmarshal(doc, &obj); err != nil || obj == nil {
		return nil, false
	}
	return obj, true
}

// sameAsRoundTrip fails unless decodeObject decodes doc exactly as the
// JSON round trip does: the same values of the same Go types, and the
// same documents refused. A document whose round trip has no one answer
// (two keys that become one string, 1 and '1': which value is kept
// follows Go's map order) is not compared.
func sameAsRoundTrip(t *testing.T, doc []byte) {
	t.Helper()
	want, wantOK := roundTrip(doc)
	for range 32 {
		if again, againOK := roundTrip(doc); againOK != wantOK || !reflect.DeepEqual(again, want) {
			return
		}
	}
	got, ok := decodeObject(doc)
	if ok != wantOK || !reflect.DeepEqual(got, want) {
		t.Errorf("document %q:\ndecoded %#v (%v)\nwant    %#v (%v)", doc, got, ok, want, wantOK)
	}
}

// edgeDocuments are documents whose decoding differs between a YAML
// parser's result and its JSON round trip, or between YAML 1.1 and 1.2.
var edgeDocuments = []string{
	"", "---", "~", "null", "- a\n- b\n", "just a string", "42",
	"a: 1\nb: 1.0\nc: 1.5\nd: -0.0\ne: 1e3\nf: 1e21\ng: 1e20\nh: 0x1F\ni: 0o17\nj: 017\nk: +12\n",
	"big: 9223372036854775807\nbigger: 9223372036854775808\nhuge: 18446744073709551616\nneg: -9223372036854775808\n",
	"f: 9007199254740993.0\ng: 1.152921504606846976e18\nh: 4503599627370496.5\n",
	"nan: .nan\n", "inf: .inf\n", "ninf: -.Inf\n",
	"yes: yes\nno: no\non: on\noff: off\ny: y\nTrue: True\n",
	"1: one\n2.5: two and a half\ntrue: t\nnull: n\n",
	"1: one\n'1': also one\n",
	"ts: 2001-12-14t21:59:43.10-05:00\ndate: 2002-12-14\n",
	"bin: !!binary R0lGODlhDAAMAIQAAP\n",
	"bad: !!binary //79\n",
	"html: '<a href=\"x\">&amp;</a>'\nsep: \"\\u2028\"\n",
	"base: &b {x: 1, y: [1, 2]}\nderived:\n  <<: *b\n  y: 3\n",
	"empty: {}\nlist: []\nnested: {a: {b: {c: [1, {d: null}]}}}\n",
	"dup: 1\ndup: 2\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  PORT: 8080\n  RATIO: 0.5\n  FLAG: true\n",
	"[1, 2]: list key\n",
	"? {a: 1}\n: map key\n",
	"a: 'unterminated\n",
	"a:\n\t- tab\n",
	"quoted: \"\\xff\"\n",
}

// Every document the repository's own YAML holds (examples, test data)
// and each edge case decodes as the round trip decodes it.
func TestDecodeObjectMatchesTheJSONRoundTrip(t *testing.T) {
	for _, doc := range edgeDocuments {
		sameAsRoundTrip(t, []byte(doc))
	}
	deep := strings.Repeat("- ", 150) + "x\n"
	sameAsRoundTrip(t, []byte("deep:\n  "+deep))
	n := 0
	for _, dir := range []string{"testdata", filepath.Join("..", "..", "examples")} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
			for {
				doc, err := rd.Read()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				sameAsRoundTrip(t, doc)
				n++
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 100 {
		t.Errorf("only %d documents compared", n)
	}
}

// FuzzDecodeObject compares decodeObject with the JSON round trip on any
// document.
func FuzzDecodeObject(f *testing.F) {
	for _, doc := range edgeDocuments {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		sameAsRoundTrip(t, doc)
	})
}
