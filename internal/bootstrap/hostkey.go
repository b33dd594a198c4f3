package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshAddress reads host:port from an SSH Git URL: ssh://user@host[:port]/path,
// or the scp form user@host:path (port 22).
func sshAddress(raw string) (string, error) {
	if strings.HasPrefix(raw, "ssh://") {
		u, err := url.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("reading the SSH URL %q: %w", raw, err)
		}
		port := u.Port()
		if port == "" {
			port = "22"
		}
		return net.JoinHostPort(u.Hostname(), port), nil
	}
	at := strings.Index(raw, "@")
	colon := strings.Index(raw, ":")
	if at < 0 || colon < at {
		return "", fmt.Errorf("%q is not an SSH Git URL (ssh://git@host/owner/repo.git or git@host:owner/repo.git)", raw)
	}
	return net.JoinHostPort(raw[at+1:colon], "22"), nil
}

// isSSH tells whether a Git URL is reached over SSH.
func isSSH(raw string) bool {
	if strings.HasPrefix(raw, "ssh://") {
		return true
	}
	return !strings.Contains(raw, "://") && strings.Contains(raw, "@") && strings.Contains(raw, ":")
}

// scanHostKey connects to an SSH server and returns its host key as a
// known_hosts line, as `ssh-keyscan` would: the handshake gives the key,
// and no authentication is attempted.
func scanHostKey(ctx context.Context, addr string) ([]byte, error) {
	var line string
	errGotKey := errors.New("host key read")
	cfg := &ssh.ClientConfig{
		User: "git",
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			line = knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
			return errGotKey
		},
		Timeout: 10 * time.Second,
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s to read its SSH host key: %w", addr, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	c, _, _, err := ssh.NewClientConn(conn, addr, cfg)
	if c != nil {
		c.Close()
	}
	if line == "" {
		return nil, fmt.Errorf("reading the SSH host key of %s: %w", addr, err)
	}
	return []byte(line + "\n"), nil
}
