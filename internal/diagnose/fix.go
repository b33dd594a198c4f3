package diagnose

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
	"sync"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
)

// rule is one row of the troubleshooting table: a kind (empty: any), a
// pattern on the reason and message, and what to do.
type rule struct {
	kinds   []string
	pattern *regexp.Regexp
	fix     string
}

var (
	sources  = []string{sourcev1.GitRepositoryKind, sourcev1.OCIRepositoryKind, sourcev1.BucketKind, sourcev1.HelmRepositoryKind, sourcev1.HelmChartKind}
	appliers = []string{kustomizev1.KustomizationKind, helmv2.HelmReleaseKind}
)

// rules are tried in order; the first that matches gives the fix. The
// patterns are the words Flux's and weir's controllers, Git, Helm,
// kustomize and SOPS use in their messages. They are compiled on first
// use, not at every start of the binary.
var rules = sync.OnceValue(func() []rule {
	return []rule{
		{[]string{sourcev1.GitRepositoryKind}, regexp.MustCompile(`(?i)knownhosts|host key|known_hosts`),
			"The server's SSH host key does not match known_hosts in the Secret of spec.secretRef: refresh known_hosts (ssh-keyscan the host) in that Secret."},
		{[]string{sourcev1.GitRepositoryKind}, regexp.MustCompile(`(?i)AuthenticationFailed|authentication required|unable to authenticate|permission denied|publickey|invalid username or password|401|403`),
			"Check the deploy key: the Secret of spec.secretRef must hold the private key as 'identity' and the server's 'known_hosts' (or 'username' and 'password' for https), and its public key must be a deploy key of the repository with read access."},
		{[]string{sourcev1.GitRepositoryKind}, regexp.MustCompile(`(?i)couldn't find remote ref|reference not found|no matching ref|unable to resolve|not found: tag|no tag|semver`),
			"The branch, tag or commit of spec.ref does not exist in the repository: push it, or correct spec.ref."},
		{sources, regexp.MustCompile(`(?i)no such host|connection refused|i/o timeout|deadline exceeded|network is unreachable|tls: |x509`),
			"The server cannot be reached or its certificate is not trusted: check spec.url, the network from the cluster, a proxy (spec.proxySecretRef) or the authority in spec.certSecretRef."},
		{[]string{sourcev1.BucketKind}, regexp.MustCompile(`(?i)were refused|anonymous access|secret data|signature|access key|denied`),
			"The S3 server refused the credentials: check 'accesskey' and 'secretkey' in the Secret of spec.secretRef, and that they may read the bucket."},
		{[]string{sourcev1.OCIRepositoryKind, sourcev1.HelmRepositoryKind}, regexp.MustCompile(`(?i)unauthorized|denied|authentication`),
			"The registry refused the credentials: check the Secret of spec.secretRef (a dockerconfigjson, or username and password)."},
		{[]string{sourcev1.HelmChartKind}, regexp.MustCompile(`(?i)no chart version|no chart name found|chart .* not found|invalid chart reference|no matching version`),
			"The chart or version does not exist in the repository: check chart and version in the HelmRelease's spec.chart.spec (or the HelmChart), and the index of its HelmRepository."},
		{nil, regexp.MustCompile(`(?i)sops|decrypt|age identit|no identity matched|failed to get the data key`),
			"The files cannot be decrypted: verify the sops-age Secret named by spec.decryption.secretRef exists in the Kustomization's namespace and holds, as 'age.agekey', the age key the files were encrypted for (.sops.yaml)."},
		{[]string{kustomizev1.KustomizationKind}, regexp.MustCompile(`(?i)path not found|path '[^']*' not found|no such file or directory|kustomization path`),
			"spec.path does not exist in the source's revision: correct spec.path, or commit the folder."},
		{[]string{kustomizev1.KustomizationKind}, regexp.MustCompile(`(?i)substitut|variable`),
			"A postBuild substitution failed: check the ConfigMaps and Secrets of spec.postBuild.substituteFrom and the ${VAR} references in the manifests."},
		{[]string{kustomizev1.KustomizationKind}, regexp.MustCompile(`(?i)no matches for kind|could not find the requested resource|ensure CRDs are installed`),
			"A manifest is of a kind the cluster does not know yet: add a dependsOn on the Kustomization or HelmRelease that installs its CRD."},
		{[]string{kustomizev1.KustomizationKind}, regexp.MustCompile(`(?i)yaml|json|kustomize build|accumulat|MalformedYAML|BuildFailed|failed to decode|unmarshal`),
			"The manifests do not build: fix the YAML or the kustomization.yaml the message names, then `weir build ks` shows the result offline."},
		{[]string{kustomizev1.KustomizationKind}, regexp.MustCompile(`(?i)dry-run failed|is invalid|Invalid value|field is immutable|forbidden`),
			"The API server refused an object: fix the field the message names (an immutable field needs the object recreated: spec.force: true)."},
		{appliers, regexp.MustCompile(`(?i)health check|timeout waiting|not ready|HealthCheckFailed|context deadline`),
			"A workload did not become ready in time: look at the objects the message names (`kubectl describe`, `weir events`), or raise spec.timeout."},
		{[]string{helmv2.HelmReleaseKind}, regexp.MustCompile(`(?i)values|schema|template|render|parse error|nil pointer`),
			"The chart does not render with these values: check spec.values and spec.valuesFrom against the chart's values (`weir build hr` renders it offline)."},
		{[]string{helmv2.HelmReleaseKind}, regexp.MustCompile(`(?i)retries exhausted|RetriesExceeded`),
			"Helm gave up after its retries: fix the cause above, then `weir reconcile hr NAME --reset` (or --force) to try again."},
	}
})

// fixFor says what to do about the object that holds an explanation. self
// is true when that object is the one asked about.
func fixFor(s Step, self bool) string {
	verb := strings.ToLower(s.Kind)
	switch s.Kind {
	case kustomizev1.KustomizationKind:
		verb = "ks"
	case helmv2.HelmReleaseKind:
		verb = "hr"
	case sourcev1.GitRepositoryKind:
		verb = "source git"
	case sourcev1.OCIRepositoryKind:
		verb = "source oci"
	case sourcev1.BucketKind:
		verb = "source bucket"
	case sourcev1.HelmRepositoryKind:
		verb = "source helm"
	case sourcev1.HelmChartKind:
		verb = "source chart"
	}
	switch s.State {
	case Ready:
		return ""
	case Missing:
		if self {
			return ""
		}
		return "Create " + s.Ref.String() + ", or correct the name that refers to it."
	case Suspended:
		return "Resume it: weir resume " + verb + " " + s.Name + " -n " + s.Namespace + "."
	case Progressing:
		return "Wait for it, or ask for a reconcile now: weir reconcile " + verb + " " + s.Name + " -n " + s.Namespace + "."
	}
	text := s.Reason + " " + s.Message
	for _, r := range rules() {
		if (len(r.kinds) == 0 || slices.Contains(r.kinds, s.Kind)) && r.pattern.MatchString(text) {
			return r.fix
		}
	}
	if strings.HasPrefix(s.Summary, "Stalled") {
		return "It is not retried until it changes: fix the cause, then apply the change."
	}
	return ""
}

// sortRefs sorts by namespace, then name.
func sortRefs(refs []Ref) {
	slices.SortFunc(refs, func(a, b Ref) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name), strings.Compare(a.Kind, b.Kind))
	})
}
