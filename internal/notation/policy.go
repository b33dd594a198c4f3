package notation

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"

	notationgo "github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	corev1 "k8s.io/api/core/v1"
)

// TrustPolicyKey is the Secret entry that holds the trust policy, as
// source-controller names it.
const TrustPolicyKey = "trustpolicy.json"

// Certificate is a trusted certificate of a verify Secret.
type Certificate struct {
	// Name is its entry in the Secret, such as ca.crt.
	Name string
	// Subject is the certificate's subject, as notation prints it.
	Subject string

	cert *x509.Certificate
}

// String names the certificate in messages: its entry and subject.
func (c Certificate) String() string { return fmt.Sprintf("%s (%s)", c.Name, c.Subject) }

// Policy is what a spec.verify Secret holds for notation: a trust policy
// document and the certificates of its trust stores, ready to verify with.
type Policy struct {
	// Secret is the Secret the policy came from, namespace/name.
	Secret string
	// Certificates are the trusted certificates, sorted by entry name.
	Certificates []Certificate

	doc      *trustpolicy.Document
	verifier notationgo.Verifier
}

// PolicyFromSecret reads trustpolicy.json and every entry of s whose name
// ends in .crt or .pem (PEM, one or more certificates, or DER), as
// source-controller does. A missing or invalid trust policy, no
// certificate, or an entry that is not one is an error that names the
// Secret.
func PolicyFromSecret(s *corev1.Secret) (*Policy, error) {
	id := s.Namespace + "/" + s.Name
	raw, ok := s.Data[TrustPolicyKey]
	if !ok {
		return nil, fmt.Errorf("'%s' not found in secret '%s'", TrustPolicyKey, id)
	}
	var doc trustpolicy.Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("error occurred while parsing %s: %w", TrustPolicyKey, err)
	}
	var names []string
	for k := range s.Data {
		if strings.HasSuffix(k, ".crt") || strings.HasSuffix(k, ".pem") {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no certificates found in secret '%s'", id)
	}
	sort.Strings(names)
	p := &Policy{Secret: id, doc: cleanTrustPolicy(&doc)}
	for _, n := range names {
		certs, err := parseCertificates(s.Data[n])
		if err != nil {
			return nil, fmt.Errorf("secret '%s': '%s' is not a PEM or DER certificate: %w", id, n, err)
		}
		for _, c := range certs {
			p.Certificates = append(p.Certificates, Certificate{Name: n, Subject: c.Subject.String(), cert: c})
		}
	}
	v, err := verifier.New(p.doc, p, nil)
	if err != nil {
		return nil, fmt.Errorf("%s in secret '%s' is not a valid trust policy: %w", TrustPolicyKey, id, err)
	}
	p.verifier = v
	return p, nil
}

// GetCertificates implements truststore.X509TrustStore: the Secret's
// certificates are every named store of every type, as in
// source-controller.
func (p *Policy) GetCertificates(_ context.Context, _ truststore.Type, _ string) ([]*x509.Certificate, error) {
	certs := make([]*x509.Certificate, len(p.Certificates))
	for i, c := range p.Certificates {
		certs[i] = c.cert
	}
	return certs, nil
}

// parseCertificates reads every certificate of a PEM bundle, or a DER
// certificate.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) > 0 {
		return certs, nil
	}
	return x509.ParseCertificates(data)
}

// cleanTrustPolicy drops the trust stores and identities of statements
// whose level is skip, which notation-go would refuse, as
// source-controller does.
func cleanTrustPolicy(doc *trustpolicy.Document) *trustpolicy.Document {
	for i, s := range doc.TrustPolicies {
		if s.SignatureVerification.VerificationLevel == trustpolicy.LevelSkip.Name {
			doc.TrustPolicies[i].TrustStores = []string{}
			doc.TrustPolicies[i].TrustedIdentities = []string{}
		}
	}
	return doc
}

// expectation says, for a message, what the statement of the trust policy
// that applies to ref trusts; or, when none applies, which scopes the
// policy covers.
func (p *Policy) expectation(ref string) string {
	s, err := p.doc.GetApplicableTrustPolicy(ref)
	if err != nil {
		var scopes []string
		for _, st := range p.doc.TrustPolicies {
			scopes = append(scopes, st.RegistryScopes...)
		}
		return fmt.Sprintf("the registryScopes of %s in secret '%s' are [%s]", TrustPolicyKey, p.Secret, strings.Join(scopes, ", "))
	}
	ids := "any identity"
	if len(s.TrustedIdentities) > 0 && !(len(s.TrustedIdentities) == 1 && s.TrustedIdentities[0] == "*") {
		ids = "[" + strings.Join(s.TrustedIdentities, "; ") + "]"
	}
	certs := make([]string, len(p.Certificates))
	for i, c := range p.Certificates {
		certs[i] = c.String()
	}
	return fmt.Sprintf("trust policy statement '%s' trusts %s signing under the certificates %s", s.Name, ids, strings.Join(certs, ", "))
}
