package kubeconfig

import (
	"context"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const token = "s3cr3t-t0ken-value"

// kubeconfig writes a one-context kubeconfig after edit changed it.
func kubeconfig(t *testing.T, edit func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cluster := &clientcmdapi.Cluster{Server: "https://prod.example.com:6443", CertificateAuthorityData: []byte("-----BEGIN CERTIFICATE-----\n")}
	user := &clientcmdapi.AuthInfo{Token: token}
	if edit != nil {
		edit(cluster, user)
	}
	cfg.Clusters["prod"] = cluster
	cfg.AuthInfos["deployer"] = user
	cfg.Contexts["prod"] = &clientcmdapi.Context{Cluster: "prod", AuthInfo: "deployer"}
	cfg.CurrentContext = "prod"
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseRefusesWhatFluxDropsAndSaysWhy(t *testing.T) {
	cases := []struct {
		name string
		edit func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)
		want string
	}{
		{"an exec plugin", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Token = ""
			u.Exec = &clientcmdapi.ExecConfig{Command: "aws", APIVersion: "client.authentication.k8s.io/v1"}
		}, `user 'deployer' runs an exec plugin ("aws") for its credentials: weir runs no program a kubeconfig names (as Flux with --insecure-kubeconfig-exec off`},
		{"an auth-provider plugin", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Token = ""
			u.AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc", Config: map[string]string{"client-secret": token}}
		}, `auth-provider plugin "oidc"`},
		{"a token file", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.Token, u.TokenFile = "", "/var/run/token" },
			"references a tokenFile, only an inline token is supported"},
		{"a client certificate file", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.ClientCertificate = "/etc/tls.crt" },
			"client-certificate file"},
		{"a CA file", func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.CertificateAuthorityData, c.CertificateAuthority = nil, "/etc/ca.crt"
		}, "certificate-authority file"},
		{"insecure-skip-tls-verify", func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.CertificateAuthorityData, c.InsecureSkipTLSVerify = nil, true
		}, "cluster 'prod' sets insecure-skip-tls-verify: weir verifies the API server's certificate (as Flux with --insecure-kubeconfig-tls off"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(kubeconfig(t, c.edit))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error saying %q, got %v", c.want, err)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("the error shows a credential: %v", err)
			}
		})
	}
	for _, data := range []string{"{not yaml", token, "clusters: " + token, "users:\n- name: a\n  user:\n    token: [" + token + "]\n"} {
		_, err := Parse([]byte(data))
		if err == nil {
			t.Errorf("%q was accepted as a kubeconfig", data)
		} else if strings.Contains(err.Error(), token) {
			t.Errorf("the error shows the Secret's content: %v", err)
		}
	}
	cfg, err := Parse(kubeconfig(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://prod.example.com:6443" || cfg.BearerToken != token {
		t.Errorf("host %q, token set %v", cfg.Host, cfg.BearerToken != "")
	}
}

// The cache keeps one connection per content and identity, shared by the
// objects that use it, and drops it once none does.
func TestCacheSharesAndDropsConnections(t *testing.T) {
	var c Cache[*rest.Config]
	ctx := context.Background()
	// A server that refuses connections: the sanitising probe fails fast.
	remote := func(digest string) *Remote {
		return &Remote{Config: &rest.Config{Host: "https://127.0.0.1:1"}, Digest: digest, Secret: "ns/kc"}
	}
	builds := 0
	build := func(cfg *rest.Config) (*rest.Config, error) { builds++; return cfg, nil }
	a, b := client.ObjectKey{Namespace: "ns", Name: "a"}, client.ObjectKey{Namespace: "ns", Name: "b"}

	first, _ := c.Get(ctx, a, remote("one"), "", build)
	again, _ := c.Get(ctx, b, remote("one"), "", build)
	if first != again || builds != 1 {
		t.Fatalf("two objects with the same kubeconfig should share one connection (%d builds)", builds)
	}
	as, _ := c.Get(ctx, b, remote("one"), "system:serviceaccount:ns:tenant", build)
	if as.Impersonate.UserName != "system:serviceaccount:ns:tenant" || first.Impersonate.UserName != "" || builds != 2 {
		t.Errorf("another identity should get its own connection, impersonating it: %q", as.Impersonate.UserName)
	}
	if c.Len() != 2 {
		// b moved to the impersonating one; a still holds the first.
		t.Errorf("%d connections held, want 2", c.Len())
	}
	// The Secret of a changes: a new connection, the old one dropped.
	if _, err := c.Get(ctx, a, remote("two"), "", build); err != nil {
		t.Fatal(err)
	}
	if builds != 3 || c.Len() != 2 {
		t.Errorf("builds %d, connections %d; want 3 and 2", builds, c.Len())
	}
	c.Forget(a)
	c.Forget(b)
	if c.Len() != 0 {
		t.Errorf("%d connections held after every object forgot them", c.Len())
	}
}
