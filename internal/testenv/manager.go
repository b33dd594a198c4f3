package testenv

import (
	"context"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/weirhq/weir/internal/manager"
)

// ArtifactMaxSize is the artifact size cap of the test manager, small so
// that tests can exceed it cheaply.
const ArtifactMaxSize = 4 << 20

// StartManager runs weir's controllers against the environment until ctx
// ends, with artifacts in a temporary folder served on loopback. Logs, at
// debug level, go to e.Logs, and to stderr too when WEIR_TEST_LOG is set.
// Main calls it, unless WithoutControllers; a test that starts it itself
// calls the returned stop.
func (e *Env) StartManager(ctx context.Context) (stop func() error, err error) {
	storage, err := os.MkdirTemp("", "weir-artifacts-")
	if err != nil {
		return nil, fmt.Errorf("creating the artifact folder: %w", err)
	}
	opts := manager.DefaultOptions()
	opts.MetricsAddr = "0"
	opts.HealthAddr = "0"
	opts.LeaderElect = false
	opts.StoragePath = storage
	opts.StorageAddr = "127.0.0.1:0"
	opts.ReceiverAddr = "127.0.0.1:0"
	opts.ArtifactMaxSize = ArtifactMaxSize
	e.Logs = &Logs{}
	var out io.Writer = e.Logs
	if os.Getenv("WEIR_TEST_LOG") != "" {
		out = io.MultiWriter(e.Logs, os.Stderr)
	}
	opts.Logger = zap.New(zap.WriteTo(out), zap.ConsoleEncoder(), zap.Level(zapcore.DebugLevel))
	for _, f := range e.managerOpts {
		f(&opts)
	}
	m, err := manager.New(e.Config, opts)
	if err != nil {
		os.RemoveAll(storage)
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	e.Manager = m
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	return func() error {
		cancel()
		err := <-done
		os.RemoveAll(storage)
		return err
	}, nil
}
