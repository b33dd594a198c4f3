package gitserver

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// pkt frames s as a pkt-line.
func pkt(s string) string {
	return fmt.Sprintf("%04x%s", len(s)+4, s)
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Git's own client negotiates in rounds, each a stateless request without
// "done"; these answers are what git's upload-pack gives.
func TestNegotiationRoundsGetNoPack(t *testing.T) {
	f := newFixture(t)
	first := f.head
	head := f.edit(t, "kind: Deployment\nreplicas: 2\n")
	wants := pkt("want " + head.String() + " ofs-delta agent=git/2.39.5\n")
	unknown := plumbing.NewHash("0123456789012345678901234567890123456789")

	tests := []struct {
		name string
		body string
		gzip bool
		want string
	}{
		{
			name: "the first request of a shallow clone gets the shallow list only",
			body: wants + pkt("deepen 1\n") + "0000",
			want: pkt("shallow "+head.String()+"\n") + "0000",
		},
		{
			name: "the same, compressed",
			body: wants + pkt("deepen 1\n") + "0000",
			gzip: true,
			want: pkt("shallow "+head.String()+"\n") + "0000",
		},
		{
			name: "a round of haves with a common commit gets its ACK",
			body: wants + "0000" + pkt("have "+unknown.String()+"\n") + pkt("have "+first.String()+"\n") + "0000",
			want: pkt("ACK " + first.String() + "\n"),
		},
		{
			name: "a round of haves with nothing in common gets NAK",
			body: wants + "0000" + pkt("have "+unknown.String()+"\n") + "0000",
			want: pkt("NAK\n"),
		},
		{
			name: "a shallow round gets the shallow list before the ACK",
			body: wants + pkt("deepen 1\n") + "0000" + pkt("have "+first.String()+"\n") + "0000",
			want: pkt("shallow "+head.String()+"\n") + "0000" + pkt("ACK "+first.String()+"\n"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.gzip {
				body = gzipped(t, tt.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/git-upload-pack", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
			if tt.gzip {
				req.Header.Set("Content-Encoding", "gzip")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, got)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/x-git-upload-pack-result" {
				t.Errorf("Content-Type = %q", ct)
			}
			if string(got) != tt.want {
				t.Errorf("reply %q, want %q", got, tt.want)
			}
		})
	}
}
