package repo

import (
	"math"
	"reflect"
	"testing"
)

// What the index stores of a file's objects reads back exactly as the
// YAML decoder gave it: every type, the extremes of numbers, empty and
// non-ASCII strings, nested lists and maps.
func TestObjectCodecRoundTrips(t *testing.T) {
	objs := Decode([]byte(`apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: flux-system
  labels: {}
data:
  empty: ""
  unicode: "héllo ✓"
  multi: |
    line one
    line two
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
spec:
  interval: 10m
  prune: true
  wait: false
  retries: -3
  big: 9223372036854775807
  small: -9223372036854775808
  ratio: 0.25
  huge: 1.0e300
  nothing: null
  dependsOn:
    - name: infra
    - {name: crds, namespace: flux-system}
  nested: [[1, 2], [], [{a: [true]}]]
`))
	if len(objs) != 2 {
		t.Fatalf("the test's YAML decoded to %d objects, want 2", len(objs))
	}
	list := []map[string]any{objs[0].Object, objs[1].Object}
	b, err := encodeObjects(list)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeObjects(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, list) {
		t.Errorf("read back\n%#v\nwant\n%#v", got, list)
	}
	if v := got[1]["spec"].(map[string]any)["small"]; v != int64(math.MinInt64) {
		t.Errorf("spec.small read back as %#v", v)
	}

	none, err := encodeObjects(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeObjects(none); err != nil || len(got) != 0 {
		t.Errorf("no objects read back as %v, %v", got, err)
	}
}

// A type the YAML decoder never gives is refused (the file is then read
// again next time rather than recorded wrong).
func TestObjectCodecRefusesOtherTypes(t *testing.T) {
	for _, v := range []any{int(1), float32(1), []string{"a"}, map[string]string{"a": "b"}, struct{}{}} {
		if _, err := encodeObjects([]map[string]any{{"v": v}}); err == nil {
			t.Errorf("a %T was encoded", v)
		}
	}
}

// A corrupt or cut index is an error, never a panic nor a huge
// allocation: every prefix of a valid encoding, every byte changed, and
// lengths far beyond the input.
func TestObjectCodecRejectsCorruptInput(t *testing.T) {
	objs := Decode([]byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b, n: 1, f: 1.5, t: true, z: null}\nlist: [x, y]\n"))
	b, err := encodeObjects([]map[string]any{objs[0].Object})
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(b) {
		if _, err := decodeObjects(b[:n]); err == nil {
			t.Errorf("the first %d of %d bytes decoded without an error", n, len(b))
		}
	}
	for i := range b {
		for _, c := range []byte{0x00, 0x7f, 0xff, 'm', 'a', 's'} {
			mut := append([]byte(nil), b...)
			mut[i] = c
			_, _ = decodeObjects(mut) // must not panic
		}
	}
	for _, bad := range [][]byte{
		{'a', 0xff, 0xff, 0xff, 0xff, 0x0f},            // a list of 4 billion
		{'a', 1, 'm', 0xff, 0xff, 0xff, 0xff, 0xff, 1}, // a map longer than the input
		{'a', 1, 's', 0xff, 0xff, 0xff, 0xff, 0x0f},    // a string longer than the input
		{'a', 1, 'x'},       // an unknown tag
		{'m', 0},            // not a list
		{'a', 1, 'i', 1, 0}, // bytes left over
		{'a', 1, 'n'},       // a list of something else than objects
	} {
		if _, err := decodeObjects(bad); err == nil {
			t.Errorf("%q decoded without an error", bad)
		}
	}
}
