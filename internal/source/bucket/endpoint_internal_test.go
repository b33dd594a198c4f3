package bucket

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestGCPEndpoints(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		insecure bool
		want     string // "" is the library's own (Google); "error" an error
	}{
		{"storage.googleapis.com", false, ""},
		{"https://storage.googleapis.com", false, ""},
		{"www.googleapis.com", true, ""},
		{"", false, ""},
		{"gcs.internal:4443", false, "https://gcs.internal:4443/storage/v1/"},
		{"127.0.0.1:4443", true, "http://127.0.0.1:4443/storage/v1/"},
		{"https://gcs.internal", false, "https://gcs.internal/storage/v1/"},
		{"http://gcs.internal", false, "error"},
		{"http://gcs.internal/", true, "http://gcs.internal/storage/v1/"},
		{"gcs.internal/storage/v1", false, "error"},
		{"ftp://gcs.internal", false, "error"},
	} {
		got, err := gcsEndpoint(tc.endpoint, tc.insecure)
		if tc.want == "error" {
			if err == nil {
				t.Errorf("gcsEndpoint(%q, %v) = %q, want an error", tc.endpoint, tc.insecure, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("gcsEndpoint(%q, %v) = %q, %v, want %q", tc.endpoint, tc.insecure, got, err, tc.want)
		}
	}
}

func TestAzureAccountNames(t *testing.T) {
	for endpoint, want := range map[string]string{
		"https://acct.blob.core.windows.net":      "acct",
		"https://acct.blob.core.chinacloudapi.cn": "acct",
		"http://127.0.0.1:10000/devstoreaccount1": "devstoreaccount1",
		"http://localhost:10000/acct/":            "acct",
		"https://core.windows":                    "",
		"http://127.0.0.1:10000":                  "",
	} {
		got, err := azureAccountName(endpoint)
		if want == "" {
			if err == nil {
				t.Errorf("azureAccountName(%q) = %q, want an error", endpoint, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("azureAccountName(%q) = %q, %v, want %q", endpoint, got, err, want)
		}
	}
}

func TestASASTokenWinsOverTheEndpointsQuery(t *testing.T) {
	got, err := sasURL("https://acct.blob.core.windows.net/?sv=old&x=1", "?sv=2022-11-02&sig=abc%2Bdef")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(got)
	q := u.Query()
	if q.Get("sv") != "2022-11-02" || q.Get("x") != "1" || q.Get("sig") != "abc+def" {
		t.Errorf("sasURL gave %s", got)
	}
	// An unparsable token is refused without being repeated.
	if _, err := sasURL("https://acct.blob.core.windows.net", "sig=%zz-secret"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("sasURL with a bad token: %v", err)
	}
}

func TestASASTokenInAFailedRequestIsNotRepeated(t *testing.T) {
	b := &bucketClient{store: &blobStore{}, name: "bkt", endpoint: "https://acct.blob.core.windows.net"}
	failed := fmt.Errorf("listing: %w", &url.Error{Op: "Get", URL: "https://acct.blob.core.windows.net/bkt?comp=list&sig=s3cr3t-sig", Err: context.DeadlineExceeded})
	msg := b.describe(context.Background(), failed).Error()
	if strings.Contains(msg, "s3cr3t") || !strings.Contains(msg, `Get "https://acct.blob.core.windows.net/bkt": context deadline exceeded`) ||
		!strings.Contains(msg, "timed out talking to") {
		t.Errorf("describe gave %q", msg)
	}
}
