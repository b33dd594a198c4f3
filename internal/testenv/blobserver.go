package testenv

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BlobServer is an Azure Blob storage endpoint on loopback for one test,
// for one storage account: List Blobs and Get Blob over the files of a
// folder (one sub-folder per container). It admits the requests that the
// account's key signs (Shared Key, as Azure documents its string to sign)
// and those that carry a SAS token the key signed (an account SAS, or a
// service SAS for a container, version 2020-12-06 or later), and refuses
// anything else as Azure does: 403 AuthenticationFailed for a wrong
// signature, AuthorizationPermissionMismatch and its kin for a token that
// does not allow the request, 404 ResourceNotFound for anonymous requests.
type BlobServer struct {
	// URL is the account's Blob service URL, path-style as an emulator's:
	// http://127.0.0.1:<port>/<account>.
	URL string
	// Account is the storage account's name.
	Account string
	// AccountKey is the account's key, in base64 as Azure gives it.
	AccountKey string

	key      []byte
	root     string
	srv      *httptest.Server
	requests atomic.Int64
}

// NewBlobServer starts a Blob storage endpoint on 127.0.0.1 over plain
// HTTP for an account, with a new random key. It stops when the test ends.
func NewBlobServer(t testing.TB, account string) *BlobServer {
	t.Helper()
	key := make([]byte, 64)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s := &BlobServer{Account: account, AccountKey: base64.StdEncoding.EncodeToString(key), key: key, root: t.TempDir()}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL + "/" + account
	return s
}

// Requests is the number of requests the server has received.
func (s *BlobServer) Requests() int64 { return s.requests.Load() }

// CreateContainer creates a container.
func (s *BlobServer) CreateContainer(t testing.TB, name string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(s.root, name), 0o755); err != nil {
		t.Fatalf("creating container %s: %v", name, err)
	}
}

// PutBlobs writes blobs, name to content, into a container.
func (s *BlobServer) PutBlobs(t testing.TB, container string, blobs map[string]string) {
	t.Helper()
	for name, content := range blobs {
		p := filepath.Join(s.root, container, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatalf("writing blob %s: %v", name, err)
		}
		// A write always gives a new ETag, as in Azure, even within the
		// resolution of the file system's clock.
		if err := os.Chtimes(p, time.Time{}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// RemoveBlobs deletes blobs from a container.
func (s *BlobServer) RemoveBlobs(t testing.TB, container string, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := os.Remove(filepath.Join(s.root, container, filepath.FromSlash(name))); err != nil {
			t.Fatalf("deleting blob %s: %v", name, err)
		}
	}
}

// ETags lists the blobs of a container under prefix with their ETags, as
// List Blobs gives them (without quotes).
func (s *BlobServer) ETags(t testing.TB, container, prefix string) map[string]string {
	t.Helper()
	blobs, err := s.blobs(container, prefix)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, b := range blobs {
		out[b.name] = b.etag
	}
	return out
}

type blobFile struct {
	name     string
	etag     string
	size     int64
	modified time.Time
	path     string
}

// blobs are the files of a container under prefix, sorted by name.
func (s *BlobServer) blobs(container, prefix string) ([]blobFile, error) {
	dir := filepath.Join(s.root, container)
	var out []blobFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, blobFile{name: name, etag: fileETag(info), size: info.Size(), modified: info.ModTime(), path: p})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, err
}

// fileETag is an ETag in Azure's form (0x and 15 hex digits), from the
// file's modification time and size.
func fileETag(info fs.FileInfo) string {
	v := uint64(info.ModTime().UnixNano())*31 + uint64(info.Size())
	return fmt.Sprintf("0x8D%013X", v&(1<<52-1))
}

func (s *BlobServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	account, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	container, blob, _ := strings.Cut(rest, "/")
	if account != s.Account || container == "" {
		blobError(w, http.StatusBadRequest, "InvalidUri", "The requested URI does not represent any resource on the server.")
		return
	}
	if !validContainerName(container) || (blob != "" && !validBlobName(blob)) {
		blobError(w, http.StatusBadRequest, "InvalidResourceName", "The specifed resource name contains invalid characters.")
		return
	}
	q := r.URL.Query()
	list := blob == "" && q.Get("restype") == "container" && q.Get("comp") == "list"
	if r.Method != http.MethodGet && r.Method != http.MethodHead || (blob == "" && !list) {
		blobError(w, http.StatusBadRequest, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb.")
		return
	}
	if status, code, msg := s.authorize(r, container, blob, list); code != "" {
		blobError(w, status, code, msg)
		return
	}
	if info, err := os.Stat(filepath.Join(s.root, container)); err != nil || !info.IsDir() {
		blobError(w, http.StatusNotFound, "ContainerNotFound", "The specified container does not exist.")
		return
	}
	if list {
		s.list(w, r, container)
		return
	}
	s.get(w, r, container, blob)
}

func validContainerName(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// validBlobName refuses what would leave the container's folder.
func validBlobName(name string) bool {
	return name == path.Clean(name) && !strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "../") && name != ".." &&
		!strings.Contains(name, "\\") && !strings.ContainsRune(name, 0)
}

// authorize returns the status, error code and message that refuse r, or
// an empty code when the account's key signed r or its SAS token.
func (s *BlobServer) authorize(r *http.Request, container, blob string, list bool) (int, string, string) {
	if r.URL.Query().Has("sig") {
		return s.authorizeSAS(r, container, blob, list)
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		// Azure does not tell a private container from a missing one.
		return http.StatusNotFound, "ResourceNotFound", "The specified resource does not exist."
	}
	const failed = "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature."
	creds, ok := strings.CutPrefix(auth, "SharedKey ")
	if !ok {
		return http.StatusForbidden, "AuthenticationFailed", failed
	}
	account, sig, _ := strings.Cut(creds, ":")
	if account != s.Account {
		return http.StatusForbidden, "AuthenticationFailed", failed
	}
	date := r.Header.Get("x-ms-date")
	if date == "" {
		date = r.Header.Get("Date")
	}
	when, err := http.ParseTime(date)
	if err != nil || time.Since(when).Abs() > 15*time.Minute {
		return http.StatusForbidden, "AuthenticationFailed", "Request date header too old or missing."
	}
	want := s.sign(sharedKeyStringToSign(r, s.Account))
	if subtle.ConstantTimeCompare([]byte(want), []byte(sig)) != 1 {
		return http.StatusForbidden, "AuthenticationFailed", failed
	}
	return 0, "", ""
}

// sharedKeyStringToSign is the string that the account's key signs for a
// Blob service request, as Azure's "Authorize with Shared Key" documents
// it for version 2015-02-21 and later.
func sharedKeyStringToSign(r *http.Request, account string) string {
	h := r.Header
	contentLength := h.Get("Content-Length")
	if contentLength == "0" {
		contentLength = ""
	}
	date := h.Get("Date")
	if h.Get("x-ms-date") != "" {
		date = ""
	}
	var canonicalHeaders []string
	for name, values := range h {
		name = strings.ToLower(name)
		if strings.HasPrefix(name, "x-ms-") {
			canonicalHeaders = append(canonicalHeaders, name+":"+strings.TrimSpace(strings.Join(values, ",")))
		}
	}
	sort.Strings(canonicalHeaders)

	resource := "/" + account + r.URL.EscapedPath()
	q := r.URL.Query()
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
	for _, name := range names {
		values := append([]string(nil), q[name]...)
		sort.Strings(values)
		resource += "\n" + strings.ToLower(name) + ":" + strings.Join(values, ",")
	}
	return strings.Join([]string{
		r.Method,
		h.Get("Content-Encoding"),
		h.Get("Content-Language"),
		contentLength,
		h.Get("Content-MD5"),
		h.Get("Content-Type"),
		date,
		h.Get("If-Modified-Since"),
		h.Get("If-Match"),
		h.Get("If-None-Match"),
		h.Get("If-Unmodified-Since"),
		h.Get("Range"),
		strings.Join(canonicalHeaders, "\n"),
		resource,
	}, "\n")
}

// sign is the base64 HMAC-SHA256 of s with the account's key.
func (s *BlobServer) sign(str string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(str))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// authorizeSAS checks a SAS token: an account SAS (ss and srt) or a
// service SAS for the container (sr=c), its signature over the string to
// sign of its version, its times, and that it allows the request.
func (s *BlobServer) authorizeSAS(r *http.Request, container, blob string, list bool) (int, string, string) {
	q := r.URL.Query()
	const failed = "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature."
	version := q.Get("sv")
	if version < "2020-12-06" {
		return http.StatusForbidden, "AuthenticationFailed", "This server takes SAS tokens of version 2020-12-06 or later."
	}
	var stringToSign string
	switch {
	case q.Has("ss"):
		stringToSign = strings.Join([]string{s.Account, q.Get("sp"), q.Get("ss"), q.Get("srt"), q.Get("st"), q.Get("se"),
			q.Get("sip"), q.Get("spr"), version, q.Get("ses"), ""}, "\n")
	case q.Get("sr") == "c":
		stringToSign = strings.Join([]string{q.Get("sp"), q.Get("st"), q.Get("se"), "/blob/" + s.Account + "/" + container,
			q.Get("si"), q.Get("sip"), q.Get("spr"), version, "c", q.Get("snapshot"), q.Get("ses"),
			q.Get("rscc"), q.Get("rscd"), q.Get("rsce"), q.Get("rscl"), q.Get("rsct")}, "\n")
	default:
		return http.StatusForbidden, "AuthenticationFailed", failed
	}
	if subtle.ConstantTimeCompare([]byte(s.sign(stringToSign)), []byte(q.Get("sig"))) != 1 {
		return http.StatusForbidden, "AuthenticationFailed", "Signature did not match."
	}
	now := time.Now()
	expiry, err := time.Parse(time.RFC3339, q.Get("se"))
	if err != nil || now.After(expiry) {
		return http.StatusForbidden, "AuthenticationFailed", "Signed expiry time [" + q.Get("se") + "] has to be after the current time."
	}
	if st := q.Get("st"); st != "" {
		if start, err := time.Parse(time.RFC3339, st); err != nil || now.Before(start) {
			return http.StatusForbidden, "AuthenticationFailed", "Signed start time [" + st + "] is in the future."
		}
	}
	if q.Get("spr") == "https" {
		return http.StatusForbidden, "AuthorizationProtocolMismatch", "This request is not authorized to perform this operation using this protocol."
	}
	if q.Has("ss") {
		if !strings.Contains(q.Get("ss"), "b") {
			return http.StatusForbidden, "AuthorizationServiceMismatch", "This request is not authorized to perform this operation using this service."
		}
		resourceType := "o"
		if list {
			resourceType = "c"
		}
		if !strings.Contains(q.Get("srt"), resourceType) {
			return http.StatusForbidden, "AuthorizationResourceTypeMismatch", "This request is not authorized to perform this operation using this resource type."
		}
	}
	permission := "r"
	if list {
		permission = "l"
	}
	if !strings.Contains(q.Get("sp"), permission) {
		return http.StatusForbidden, "AuthorizationPermissionMismatch", "This request is not authorized to perform this operation using this permission."
	}
	return 0, "", ""
}

// listResults is the body of List Blobs.
type listResults struct {
	XMLName         xml.Name `xml:"EnumerationResults"`
	ServiceEndpoint string   `xml:"ServiceEndpoint,attr"`
	ContainerName   string   `xml:"ContainerName,attr"`
	Prefix          string   `xml:"Prefix,omitempty"`
	Marker          string   `xml:"Marker,omitempty"`
	MaxResults      int      `xml:"MaxResults,omitempty"`
	Blobs           struct {
		Blob []listBlob `xml:"Blob"`
	} `xml:"Blobs"`
	NextMarker string `xml:"NextMarker"`
}

type listBlob struct {
	Name       string `xml:"Name"`
	Properties struct {
		CreationTime  string `xml:"Creation-Time"`
		LastModified  string `xml:"Last-Modified"`
		Etag          string `xml:"Etag"`
		ContentLength int64  `xml:"Content-Length"`
		ContentType   string `xml:"Content-Type"`
		BlobType      string `xml:"BlobType"`
		LeaseStatus   string `xml:"LeaseStatus"`
		LeaseState    string `xml:"LeaseState"`
	} `xml:"Properties"`
}

// list answers List Blobs, flat, a page of maxresults (5000 at most) at a
// time, the marker being the name the next page starts at.
func (s *BlobServer) list(w http.ResponseWriter, r *http.Request, container string) {
	q := r.URL.Query()
	limit := 5000
	if v := q.Get("maxresults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			blobError(w, http.StatusBadRequest, "OutOfRangeQueryParameterValue", "One of the query parameters specified in the request URI is outside the permissible range.")
			return
		}
		limit = min(n, limit)
	}
	blobs, err := s.blobs(container, q.Get("prefix"))
	if err != nil {
		blobError(w, http.StatusInternalServerError, "InternalError", "The server encountered an internal error.")
		return
	}
	marker := q.Get("marker")
	res := listResults{ServiceEndpoint: "http://" + r.Host + "/" + s.Account + "/", ContainerName: container,
		Prefix: q.Get("prefix"), Marker: marker, MaxResults: limit}
	for _, b := range blobs {
		if b.name < marker {
			continue
		}
		if len(res.Blobs.Blob) == limit {
			res.NextMarker = b.name
			break
		}
		var lb listBlob
		lb.Name = b.name
		lb.Properties.CreationTime = b.modified.UTC().Format(http.TimeFormat)
		lb.Properties.LastModified = b.modified.UTC().Format(http.TimeFormat)
		lb.Properties.Etag = b.etag
		lb.Properties.ContentLength = b.size
		lb.Properties.ContentType = "application/octet-stream"
		lb.Properties.BlobType = "BlockBlob"
		lb.Properties.LeaseStatus = "unlocked"
		lb.Properties.LeaseState = "available"
		res.Blobs.Blob = append(res.Blobs.Blob, lb)
	}
	var body bytes.Buffer
	body.WriteString(xml.Header)
	if err := xml.NewEncoder(&body).Encode(res); err != nil {
		blobError(w, http.StatusInternalServerError, "InternalError", "The server encountered an internal error.")
		return
	}
	s.headers(w, r)
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write(body.Bytes())
}

// get answers Get Blob, with ranges (Range or x-ms-range) and conditions.
func (s *BlobServer) get(w http.ResponseWriter, r *http.Request, container, blob string) {
	p := filepath.Join(s.root, container, filepath.FromSlash(blob))
	f, err := os.Open(p)
	if err != nil {
		blobError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.IsDir() {
		blobError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	s.headers(w, r)
	w.Header().Set("ETag", `"`+fileETag(info)+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("x-ms-blob-type", "BlockBlob")
	w.Header().Set("x-ms-creation-time", info.ModTime().UTC().Format(http.TimeFormat))
	w.Header().Set("x-ms-lease-state", "available")
	w.Header().Set("x-ms-lease-status", "unlocked")
	w.Header().Set("x-ms-server-encrypted", "true")
	if rng := r.Header.Get("x-ms-range"); rng != "" {
		r.Header.Set("Range", rng)
	}
	http.ServeContent(w, r, "", info.ModTime(), f)
}

// headers sets the headers of every answer of the Blob service.
func (s *BlobServer) headers(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-ms-request-id", RandomName(8)+"-0000-0000-0000-000000000000")
	if v := r.Header.Get("x-ms-version"); v != "" {
		w.Header().Set("x-ms-version", v)
	}
	if id := r.Header.Get("x-ms-client-request-id"); id != "" {
		w.Header().Set("x-ms-client-request-id", id)
	}
}

// blobError answers with an error of the Blob service: its code in
// x-ms-error-code and in an XML body with the message.
func blobError(w http.ResponseWriter, status int, code, message string) {
	var body bytes.Buffer
	body.WriteString(xml.Header)
	_ = xml.NewEncoder(&body).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string
		Message string
	}{Code: code, Message: message + "\nRequestId:" + RandomName(8) + "\nTime:" + time.Now().UTC().Format(time.RFC3339Nano)})
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}
