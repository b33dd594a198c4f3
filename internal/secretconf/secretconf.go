// Package secretconf reads the connection settings Flux keeps in Secrets,
// the same way for every kind that names them: a certSecretRef's
// certificate authority and client certificate, and a proxySecretRef's
// proxy address and credentials.
package secretconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"

	corev1 "k8s.io/api/core/v1"
)

// TLSConfig builds client TLS settings from a certSecretRef Secret:
// ca.crt (or the older caFile) added to the system's authorities, and
// tls.crt with tls.key (or certFile with keyFile) as a client certificate,
// as Flux's controllers read them.
func TLSConfig(s *corev1.Secret) (*tls.Config, error) {
	pick := func(keys ...string) []byte {
		for _, k := range keys {
			if v := s.Data[k]; len(v) > 0 {
				return v
			}
		}
		return nil
	}
	ca := pick("ca.crt", "caFile")
	crt, key := pick(corev1.TLSCertKey, "certFile"), pick(corev1.TLSPrivateKeyKey, "keyFile")
	if ca == nil && crt == nil && key == nil {
		return nil, fmt.Errorf("secret '%s' has none of 'ca.crt', 'tls.crt' and 'tls.key'", s.Name)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != nil {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("secret '%s': 'ca.crt' holds no PEM certificate", s.Name)
		}
		cfg.RootCAs = pool
	}
	if (crt == nil) != (key == nil) {
		return nil, fmt.Errorf("secret '%s' must hold both 'tls.crt' and 'tls.key' for a client certificate", s.Name)
	}
	if crt != nil {
		pair, err := tls.X509KeyPair(crt, key)
		if err != nil {
			return nil, fmt.Errorf("secret '%s': 'tls.crt' and 'tls.key' are not a certificate and its key: %w", s.Name, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// ProxyURL reads a proxySecretRef Secret: address, and optionally username
// and password, which go into the URL's user information.
func ProxyURL(s *corev1.Secret) (*url.URL, error) {
	addr := string(s.Data["address"])
	if addr == "" {
		return nil, fmt.Errorf("secret '%s' has no 'address' key", s.Name)
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("secret '%s': 'address' is not a proxy URL such as http://proxy:3128", s.Name)
	}
	user, pass := string(s.Data["username"]), string(s.Data["password"])
	if (user == "") != (pass == "") {
		return nil, fmt.Errorf("secret '%s' must hold both 'username' and 'password', or neither", s.Name)
	}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u, nil
}
