// Command image builds weir's container image without Docker, as `make
// image` runs it: weir is compiled for each platform (static,
// CGO_ENABLED=0, -trimpath, stripped, with the version given), put on an
// empty base with this machine's CA certificates (see internal/image), and
// the image index is written as an OCI image layout.
//
//	go run ./tools/image -out bin/image -version 0.1.0
//	crane push bin/image ghcr.io/weirhq/weir:0.1.0
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/weirhq/weir/internal/image"
)

func main() {
	out := flag.String("out", "bin/image", "folder to write the OCI image layout to")
	ver := flag.String("version", "dev", "weir's version, in the binary and the image's labels")
	platforms := flag.String("platforms", "linux/amd64,linux/arm64", "comma-separated platforms to build")
	ca := flag.String("ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to put in the image")
	flag.Parse()
	if err := run(*out, *ver, *platforms, *ca); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(out, ver, platforms, ca string) error {
	tmp, err := os.MkdirTemp("", "weir-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	revision := gitOutput("rev-parse", "HEAD")
	created := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		created = time.Unix(n, 0).UTC()
	}
	bins := map[string]string{}
	for _, p := range strings.Split(platforms, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok {
			return fmt.Errorf("platform %q is not OS/ARCH", p)
		}
		bin := filepath.Join(tmp, goos+"-"+goarch, "weir")
		fmt.Fprintf(os.Stderr, "► building weir for %s/%s\n", goos, goarch)
		cmd := exec.Command("go", "build", "-trimpath",
			"-ldflags", "-s -w -X github.com/weirhq/weir/internal/version.Version="+ver,
			"-o", bin, "./cmd/weir")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building weir for %s/%s: %w", goos, goarch, err)
		}
		bins[goos+"/"+goarch] = bin
	}
	idx, err := image.Build(image.Options{
		Binaries: bins, CACerts: ca, Version: ver, Revision: revision,
		Source: "https://github.com/weirhq/weir", Created: created,
	})
	if err != nil {
		return err
	}
	if err := image.WriteLayout(out, idx); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("✔ image index %s written to %s (OCI image layout)\n", d, out)
	return nil
}

// gitOutput is the trimmed output of a git command, "" when it fails.
func gitOutput(args ...string) string {
	b, err := exec.Command("git", args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
