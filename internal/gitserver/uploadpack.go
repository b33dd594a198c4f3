package gitserver

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/utils/ioutil"
)

// Content types of the smart HTTP protocol.
const (
	advertisementType = "application/x-git-upload-pack-advertisement"
	requestType       = "application/x-git-upload-pack-request"
	resultType        = "application/x-git-upload-pack-result"
)

// maxRequestBytes bounds an upload-pack request, after decompression. A
// request is wants and haves of 50 bytes each: this allows 160,000 of them.
const maxRequestBytes = 8 << 20

// errBadRequest marks errors caused by what the client sent; they are
// answered with 400 Bad Request.
var errBadRequest = errors.New("bad request")

// packWindow is how many objects the pack encoder compares when looking
// for deltas, as in go-git's own server.
const packWindow = 10

// serveAdvertisement answers GET info/refs?service=git-upload-pack: the
// service line, a flush, then the references and capabilities.
func serveAdvertisement(w http.ResponseWriter, r *http.Request, st storer.Storer) {
	ar, err := advertisedRefs(r.Context(), st)
	if err != nil {
		http.Error(w, fmt.Sprintf("listing the repository's references: %v", err), http.StatusInternalServerError)
		return
	}
	ar.Prefix = [][]byte{[]byte("# service=" + uploadPackPath), pktline.Flush}
	var buf bytes.Buffer
	if err := ar.Encode(&buf); err != nil {
		http.Error(w, fmt.Sprintf("encoding the repository's references: %v", err), http.StatusInternalServerError)
		return
	}
	setNoCache(w.Header())
	w.Header().Set("Content-Type", advertisementType)
	_, _ = w.Write(buf.Bytes())
}

// serveUploadPack answers POST git-upload-pack: it reads what the client
// wants and has, and sends the pack of what it lacks.
func serveUploadPack(w http.ResponseWriter, r *http.Request, st storer.Storer) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != requestType {
		http.Error(w, fmt.Sprintf("expected a body of type %s, got %q", requestType, r.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		httpError(w, err)
		return
	}
	req, end, err := decodeUploadPackRequest(body)
	if err == nil {
		err = checkRequest(st, req)
	}
	if err != nil {
		httpError(w, err)
		return
	}
	req.Haves = knownObjects(st, req.Haves)

	if end != endWithDone {
		// A client still negotiating (git's own, which sends its haves in
		// rounds) gets the shallow list and acknowledgements only, and asks
		// again with "done".
		reply, err := negotiationReply(st, req, end)
		if err != nil {
			httpError(w, err)
			return
		}
		setNoCache(w.Header())
		w.Header().Set("Content-Type", resultType)
		_, _ = w.Write(reply)
		return
	}

	resp, err := uploadPack(r.Context(), st, req)
	if err != nil {
		httpError(w, err)
		return
	}
	defer func() { _ = resp.Close() }()
	setNoCache(w.Header())
	w.Header().Set("Content-Type", resultType)
	// Once the pack streams, the status is sent: a failure from here on
	// (the client went away, ctx ended) can only cut the pack short, which
	// the client reports as a broken pack.
	_ = resp.Encode(w)
}

// advertisedRefs lists the references of st as go-git's server advertises
// them (branches, tags, HEAD with its symref), and adds the shallow
// capability, which this package serves itself (see shallow.go).
func advertisedRefs(ctx context.Context, st storer.Storer) (*packp.AdvRefs, error) {
	sess, err := newSession(st)
	if err != nil {
		return nil, err
	}
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return nil, err
	}
	if err := ar.Capabilities.Set(capability.Shallow); err != nil {
		return nil, err
	}
	return ar, nil
}

// uploadPack prepares the response to a complete request. Full clones and
// fetches are go-git's server's own work. go-git's server refuses anything
// shallow (a depth needs the shallow capability, which it rejects, and it
// answers a shallow clone's request with "shallow not supported"), so those
// requests get their objects chosen by selectObjects and packed with the
// same encoder. A request for nothing new also goes there, as go-git's
// server answers it with an error where the protocol expects an empty pack.
func uploadPack(ctx context.Context, st storer.Storer, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	var resp *packp.UploadPackResponse
	if req.Depth.IsZero() && len(req.Shallows) == 0 && !req.IsEmpty() {
		sess, err := newSession(st)
		if err != nil {
			return nil, err
		}
		if resp, err = sess.UploadPack(ctx, req); err != nil {
			return nil, fmt.Errorf("preparing the pack: %w", err)
		}
	} else {
		objects, update, err := selectObjects(st, req)
		if err != nil {
			return nil, err
		}
		resp = packResponse(ctx, st, req, objects)
		resp.ShallowUpdate = update
	}
	resp.ACKs = firstCommon(req.Haves)
	return resp, nil
}

// packResponse streams the pack of objects as the response's body. The
// encoder runs until the pack is written or the response is closed.
func packResponse(ctx context.Context, st storer.EncodedObjectStorer, req *packp.UploadPackRequest, objects []plumbing.Hash) *packp.UploadPackResponse {
	pr, pw := io.Pipe()
	useRefDeltas := !req.Capabilities.Supports(capability.OFSDelta)
	enc := packfile.NewEncoder(pw, st, useRefDeltas)
	go func() {
		_, err := enc.Encode(objects, packWindow)
		pw.CloseWithError(err)
	}()
	return packp.NewUploadPackResponseWithPackfile(req, ioutil.NewContextReadCloser(ctx, pr))
}

// negotiationReply answers a request without "done". After the wants
// alone, a stateless client asks for the shallow list only, to know its
// history before it lists haves; after a round of haves it wants the
// shallow list again, then an ACK of a common object, or NAK when there is
// none yet. This is what git's upload-pack answers.
func negotiationReply(st storer.EncodedObjectStorer, req *packp.UploadPackRequest, end requestEnd) ([]byte, error) {
	var buf bytes.Buffer
	if !req.Depth.IsZero() {
		_, update, err := selectObjects(st, req)
		if err != nil {
			return nil, err
		}
		if err := update.Encode(&buf); err != nil {
			return nil, err
		}
	}
	if end == endAfterWants {
		return buf.Bytes(), nil
	}
	sr := packp.ServerResponse{ACKs: firstCommon(req.Haves)}
	if err := sr.Encode(&buf, false); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// requestEnd says where an upload-pack request stopped.
type requestEnd int

const (
	// endAfterWants: nothing followed the wants (and depth).
	endAfterWants requestEnd = iota
	// endAfterHaves: haves followed, but no "done".
	endAfterHaves
	// endWithDone: the client is done negotiating and wants the pack.
	endWithDone
)

// decodeUploadPackRequest reads a request body: wants, shallows and depth up
// to a flush, then rounds of haves, each ended by a flush, then "done". end
// tells how far the body went.
func decodeUploadPackRequest(body []byte) (req *packp.UploadPackRequest, end requestEnd, err error) {
	r := bytes.NewReader(body)
	req = packp.NewUploadPackRequest()
	// The decoder reads pkt-lines exactly, up to the flush after the wants,
	// so the haves are still in r afterwards.
	if err := req.UploadRequest.Decode(r); err != nil {
		return nil, 0, fmt.Errorf("%w: reading the wanted objects: %w", errBadRequest, err)
	}
	end = endAfterWants
	sc := pktline.NewScanner(r)
	for sc.Scan() {
		end = endAfterHaves
		line := bytes.TrimSuffix(sc.Bytes(), []byte("\n"))
		switch {
		case len(line) == 0:
			// A flush ends a round of haves.
		case string(line) == "done":
			return req, endWithDone, nil
		case bytes.HasPrefix(line, []byte("have ")):
			hex := string(line[len("have "):])
			if !plumbing.IsHash(hex) {
				return nil, 0, fmt.Errorf("%w: malformed have line %q", errBadRequest, line)
			}
			req.Haves = append(req.Haves, plumbing.NewHash(hex))
		default:
			return nil, 0, fmt.Errorf("%w: unexpected line %q among haves", errBadRequest, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("%w: reading the objects the client has: %w", errBadRequest, err)
	}
	return req, end, nil
}

// checkRequest rejects requests this server cannot answer. go-git's
// UploadRequest.Validate is not used: it wants the shallow capability with
// a depth, which real git clients do not send.
func checkRequest(st storer.EncodedObjectStorer, req *packp.UploadPackRequest) error {
	if len(req.Wants) == 0 {
		return fmt.Errorf("%w: no object wanted", errBadRequest)
	}
	switch req.Depth.(type) {
	case packp.DepthCommits:
	default:
		return fmt.Errorf("%w: only a depth in commits is supported (no deepen-since, no deepen-not)", errBadRequest)
	}
	for _, h := range req.Wants {
		if st.HasEncodedObject(h) != nil {
			return fmt.Errorf("%w: not our ref %s", errBadRequest, h)
		}
	}
	return nil
}

// knownObjects keeps the hashes st has: a client may have commits this
// repository never had, which mean nothing here.
func knownObjects(st storer.EncodedObjectStorer, hashes []plumbing.Hash) []plumbing.Hash {
	var known []plumbing.Hash
	for _, h := range hashes {
		if st.HasEncodedObject(h) == nil {
			known = append(known, h)
		}
	}
	return known
}

// firstCommon is what a server without multi_ack acknowledges: the first
// object both sides have, if any.
func firstCommon(haves []plumbing.Hash) []plumbing.Hash {
	if len(haves) == 0 {
		return nil
	}
	return haves[:1]
}

// readBody reads the request body, gunzipping it when the client compressed
// it, and refuses more than maxRequestBytes either way.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("%w: reading the compressed body: %w", errBadRequest, err)
		}
		defer func() { _ = gz.Close() }()
		body = gz
	}
	data, err := io.ReadAll(io.LimitReader(body, maxRequestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the body: %w", errBadRequest, err)
	}
	if len(data) > maxRequestBytes {
		return nil, fmt.Errorf("%w: the request is larger than %d bytes", errBadRequest, maxRequestBytes)
	}
	return data, nil
}

// storerLoader hands go-git's transport server the repository of the request
// being served; the handler has already found it by name.
type storerLoader struct{ st storer.Storer }

// Load returns the loader's repository, whatever the endpoint.
func (l storerLoader) Load(*transport.Endpoint) (storer.Storer, error) {
	return l.st, nil
}

// newSession opens go-git's server-side upload-pack session over st. Smart
// HTTP is stateless, so each request gets its own.
func newSession(st storer.Storer) (transport.UploadPackSession, error) {
	sess, err := server.NewServer(storerLoader{st}).NewUploadPackSession(&transport.Endpoint{}, nil)
	if err != nil {
		return nil, fmt.Errorf("opening an upload-pack session: %w", err)
	}
	return sess, nil
}

func setNoCache(h http.Header) {
	h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	h.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
	h.Set("Pragma", "no-cache")
}

// httpError replies with err's text: 400 for what the client got wrong,
// 500 for the rest.
func httpError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, errBadRequest) {
		status = http.StatusBadRequest
	}
	http.Error(w, err.Error(), status)
}
