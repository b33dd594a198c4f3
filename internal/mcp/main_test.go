package mcp_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/cli"
	"github.com/weirhq/weir/internal/logs"
	"github.com/weirhq/weir/internal/mcp"
	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

// mainArgsEnv, when set, makes the test binary run weir's Main with the
// JSON list of arguments it holds instead of the tests: the stdio test
// runs `weir mcp` as a process of its own this way.
const mainArgsEnv = "WEIR_MCP_TEST_MAIN_ARGS"

func TestMain(m *testing.M) {
	if argv, ok := os.LookupEnv(mainArgsEnv); ok {
		var args []string
		if err := json.Unmarshal([]byte(argv), &args); err != nil {
			panic(err)
		}
		os.Exit(cli.Main(args))
	}
	testenv.Main(m, &env)
}

// The values a user would not want an assistant to see: one in a Secret
// the Kustomization applies, one in a Secret of the cluster that its
// postBuild substitutes into a ConfigMap.
const (
	renderedSecret    = "hunter2-rendered-4711"
	substitutedSecret = "s3cr3t-substituted-0815"
)

// chain is a GitRepository served by a loopback Git server, a
// Kustomization app that applies it (a ConfigMap holding a value
// substituted from a Secret, and a Secret), and a Kustomization waiter
// that depends on app and on one that does not exist.
type chain struct {
	ns     string
	repo   *testenv.Repo
	commit string
}

// newChain builds the chain for one test and waits until app is Ready.
func newChain(t *testing.T) chain {
	ctx := context.Background()
	ns := env.Namespace(t)
	git := testenv.NewGitServer(t, "", "")
	repo := git.Repo(t, "cluster")
	h := repo.Commit("main", map[string]string{
		"apps/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: ${GREETING}\n",
		"apps/password.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: password\nstringData:\n  password: " + renderedSecret + "\n",
	}, "apps")
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "values"}, StringData: map[string]string{"GREETING": substitutedSecret}})
	create(t, &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "repo"},
		Spec: sourcev1.GitRepositorySpec{URL: git.HTTPURL("cluster"), Interval: metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
	})
	create(t, &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: time.Hour}, Path: "./apps", Prune: true, TargetNamespace: ns,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"},
			PostBuild: &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "Secret", Name: "values"}}},
		},
	})
	create(t, &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "waiter"},
		Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: time.Hour}, Path: "./apps", TargetNamespace: ns,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"},
			DependsOn: []meta.DependencyReference{{Name: "app"}, {Name: "ghost"}},
		},
	})
	testenv.WaitFor(t, 2*time.Minute, func() string {
		ks := &kustomizev1.Kustomization{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, ks); err != nil {
			return err.Error()
		}
		if !conditions.IsReady(ks) {
			return "Kustomization app is not Ready: " + conditions.GetMessage(ks, meta.ReadyCondition)
		}
		return ""
	})
	return chain{ns: ns, repo: repo, commit: h.String()}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// capturedLog is a log captured from a `weir up` run (see internal/logs).
const capturedLog = "../logs/testdata/weir-up.log"

// connect starts a server with opts (the test cluster's client and the
// captured log unless set) and returns a client session on it, over
// in-memory transports.
func connect(t *testing.T, opts mcp.Options) *sdk.ClientSession {
	t.Helper()
	if opts.Client == nil {
		opts.Client = env.Client
	}
	if opts.Logs == nil {
		opts.Logs = logs.File{Path: capturedLog}
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = testLogger(t, nil)
	}
	ctx := context.Background()
	serverT, clientT := sdk.NewInMemoryTransports()
	ss, err := mcp.New(opts).SDK().Connect(ctx, serverT, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil).Connect(ctx, clientT, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// toolNames lists the tools the session offers.
func toolNames(t *testing.T, cs *sdk.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	return names
}

// result is what a tool call gave.
type result struct {
	tool    string
	isError bool
	text    string
}

// call calls a tool and returns its result; a protocol error fails the
// test.
func call(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("calling %s: %v", tool, err)
	}
	var text []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	if res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		text = append(text, string(b))
	}
	return result{tool: tool, isError: res.IsError, text: strings.Join(text, "\n")}
}

// decode reads a successful result's JSON into out.
func decode(t *testing.T, r result, out any) {
	t.Helper()
	if r.isError {
		t.Fatalf("%s failed: %s", r.tool, r.text)
	}
	first, _, _ := strings.Cut(r.text, "\n")
	if err := json.Unmarshal([]byte(first), out); err != nil {
		t.Fatalf("%s: reading %q: %v", r.tool, r.text, err)
	}
}

// callLog holds what a server logged.
type callLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *callLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// testLogger logs to the test's log, and to into when given.
func testLogger(t *testing.T, into *callLog) logr.Logger {
	return funcr.New(func(prefix, args string) {
		t.Log(prefix, args)
		if into != nil {
			into.mu.Lock()
			into.lines = append(into.lines, args)
			into.mu.Unlock()
		}
	}, funcr.Options{})
}
