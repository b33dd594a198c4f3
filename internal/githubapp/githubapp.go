// Package githubapp lets weir fetch from GitHub as a GitHub App
// installation, as GitRepository's `provider: github` asks: it signs the
// app's JSON Web Token with the app's private key, exchanges it at the
// GitHub API for an installation access token, and keeps the token until
// most of its lifetime has passed. Git then authenticates with HTTP basic
// auth, user Username and the token as the password.
//
// The Secret keys are Flux's (githubAppID, githubAppInstallationID or
// githubAppInstallationOwner, githubAppPrivateKey, githubAppBaseURL).
package githubapp

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The Secret keys a GitHub App is read from, as Flux names them.
const (
	KeyAppID                = "githubAppID"
	KeyAppInstallationID    = "githubAppInstallationID"
	KeyAppInstallationOwner = "githubAppInstallationOwner"
	KeyAppPrivateKey        = "githubAppPrivateKey"
	KeyAppBaseURL           = "githubAppBaseURL"
)

// Username is the user Git presents with an installation token.
const Username = "x-access-token"

// DefaultBaseURL is GitHub's API.
const DefaultBaseURL = "https://api.github.com"

// maxResponse bounds what is read from the API.
const maxResponse = 1 << 20

// App is a GitHub App installation to authenticate as.
type App struct {
	ID int64
	// InstallationID, or else Owner (an organisation or a user) whose
	// installation is looked up.
	InstallationID int64
	Owner          string
	PrivateKey     *rsa.PrivateKey
	// BaseURL is the API's URL; requests go to BaseURL + "/app/...".
	BaseURL string

	// key tells cached tokens apart: a digest of every field, the private
	// key included.
	key string
}

// HasAppData reports whether a Secret's data names a GitHub App.
func HasAppData(data map[string][]byte) bool { return len(data[KeyAppID]) > 0 }

// FromSecret reads an App from a Secret's data, with Flux's checks.
func FromSecret(data map[string][]byte) (App, error) {
	var a App
	var err error
	if a.ID, err = strconv.ParseInt(strings.TrimSpace(string(data[KeyAppID])), 10, 64); err != nil || a.ID <= 0 {
		return App{}, errors.New("app ID must be provided to use github app authentication")
	}
	if v := strings.TrimSpace(string(data[KeyAppInstallationID])); v != "" {
		if a.InstallationID, err = strconv.ParseInt(v, 10, 64); err != nil || a.InstallationID <= 0 {
			return App{}, fmt.Errorf("'%s' must be a number", KeyAppInstallationID)
		}
	}
	a.Owner = strings.TrimSpace(string(data[KeyAppInstallationOwner]))
	switch {
	case a.Owner == "" && a.InstallationID == 0:
		return App{}, errors.New("app installation owner or ID must be provided to use github app authentication")
	case a.Owner != "" && a.InstallationID != 0:
		return App{}, errors.New("only one of app installation owner or ID must be provided to use github app authentication")
	}
	pemKey := data[KeyAppPrivateKey]
	if len(pemKey) == 0 {
		return App{}, errors.New("private key must be provided to use github app authentication")
	}
	if a.PrivateKey, err = jwt.ParseRSAPrivateKeyFromPEM(pemKey); err != nil {
		// The parser's error quotes nothing of the key.
		return App{}, fmt.Errorf("could not parse private key: %w", err)
	}
	a.BaseURL = strings.TrimSuffix(strings.TrimSpace(string(data[KeyAppBaseURL])), "/")
	if a.BaseURL == "" {
		a.BaseURL = DefaultBaseURL
	}
	if u, err := url.Parse(a.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return App{}, fmt.Errorf("invalid API URL '%s': expected https://host[/path]", a.BaseURL)
	}
	sum := sha256.New()
	fmt.Fprintf(sum, "%d\x00%d\x00%s\x00%s\x00", a.ID, a.InstallationID, a.Owner, a.BaseURL)
	sum.Write(pemKey)
	a.key = fmt.Sprintf("%x", sum.Sum(nil))
	return a, nil
}

// Tokens caches installation tokens; the zero value is ready to use and is
// safe for concurrent use.
type Tokens struct {
	mu     sync.Mutex
	tokens map[string]token
	// now is time.Now, or a test's clock.
	now func() time.Time
}

type token struct {
	value string
	// renewAt is when 80% of the token's lifetime has passed, as Flux's
	// token cache counts it.
	renewAt time.Time
}

// Token returns an installation token for the app: the cached one while
// it is fresh, else a new one from the API, through client.
func (t *Tokens) Token(ctx context.Context, app App, client *http.Client) (string, error) {
	now := time.Now
	if t.now != nil {
		now = t.now
	}
	t.mu.Lock()
	if tok, ok := t.tokens[app.key]; ok && now().Before(tok.renewAt) {
		t.mu.Unlock()
		return tok.value, nil
	}
	t.mu.Unlock()

	issued := now()
	value, expires, err := app.newToken(ctx, client, issued)
	if err != nil {
		return "", err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tokens == nil {
		t.tokens = map[string]token{}
	}
	for k, tok := range t.tokens {
		if !issued.Before(tok.renewAt) {
			delete(t.tokens, k)
		}
	}
	t.tokens[app.key] = token{value: value, renewAt: issued.Add(expires.Sub(issued) * 8 / 10)}
	return value, nil
}

// newToken signs the app's JWT and exchanges it for an installation token.
func (a App) newToken(ctx context.Context, client *http.Client, now time.Time) (string, time.Time, error) {
	// As Flux: whole seconds, back-dated 30 s for clock drift, two
	// minutes of life, only ever used for this exchange.
	iat := now.Truncate(time.Second).Add(-30 * time.Second)
	signed, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(iat),
		ExpiresAt: jwt.NewNumericDate(iat.Add(2 * time.Minute)),
		Issuer:    strconv.FormatInt(a.ID, 10),
	}).SignedString(a.PrivateKey)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing the app's JWT: %w", err)
	}
	id := a.InstallationID
	if id == 0 {
		if id, err = a.findInstallation(ctx, client, signed); err != nil {
			return "", time.Time{}, err
		}
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	path := fmt.Sprintf("/app/installations/%d/access_tokens", id)
	if err := a.call(ctx, client, http.MethodPost, path, signed, http.StatusCreated, &out); err != nil {
		return "", time.Time{}, fmt.Errorf("creating an installation token for app %d, installation %d: %w", a.ID, id, err)
	}
	if out.Token == "" || !out.ExpiresAt.After(now) {
		return "", time.Time{}, fmt.Errorf("creating an installation token for app %d, installation %d: the API answered without a token that is still valid", a.ID, id)
	}
	return out.Token, out.ExpiresAt, nil
}

// findInstallation looks the owner's installation up, as an organisation
// and then as a user, as Flux does.
func (a App) findInstallation(ctx context.Context, client *http.Client, signed string) (int64, error) {
	var errs []error
	for _, kind := range []string{"orgs", "users"} {
		var out struct {
			ID int64 `json:"id"`
		}
		err := a.call(ctx, client, http.MethodGet, "/"+kind+"/"+url.PathEscape(a.Owner)+"/installation", signed, http.StatusOK, &out)
		if err == nil && out.ID > 0 {
			return out.ID, nil
		}
		if err == nil {
			err = errors.New("the API answered without an installation ID")
		}
		what := "organization"
		if kind == "users" {
			what = "user"
		}
		errs = append(errs, fmt.Errorf("failed to find %s installation: %w", what, err))
	}
	return 0, fmt.Errorf("finding the installation of app %d for '%s': %w", a.ID, a.Owner, errors.Join(errs...))
}

func (a App) call(ctx context.Context, client *http.Client, method, path, signed string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.BaseURL+path, bytes.NewReader(nil))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+signed)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("reading the answer of %s %s: %w", method, req.URL.Redacted(), err)
	}
	if resp.StatusCode != want {
		// GitHub explains a refusal in "message"; nothing else of the
		// body is repeated.
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		msg := fmt.Sprintf("%s %s: %s", method, req.URL.Redacted(), resp.Status)
		if e.Message != "" {
			msg += ": " + e.Message
		}
		return errors.New(msg)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("reading the answer of %s %s: %w", method, req.URL.Redacted(), err)
	}
	return nil
}
