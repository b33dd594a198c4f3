package up

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// RunsDirEnv names the folder where background runs are recorded; the
// default is $XDG_STATE_HOME/weir/up, else ~/.local/state/weir/up.
const RunsDirEnv = "WEIR_RUNS_DIR"

// Run records where a background `weir up` of a repository folder keeps
// its state, so that `weir down PATH` finds it whatever --state-dir was.
type Run struct {
	// Path is the repository folder, absolute.
	Path string `json:"path"`
	// StateDir is the run's state folder, absolute.
	StateDir string `json:"stateDir"`
	// PID is the background process.
	PID int `json:"pid"`
}

// runsDir is the folder of run records.
func runsDir() (string, error) {
	if d := os.Getenv(RunsDirEnv); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "weir", "up"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the home folder for weir's run records: %w", err)
	}
	return filepath.Join(home, ".local", "state", "weir", "up"), nil
}

// runFile is the record of the repository folder path (absolute).
func runFile(path string) (string, error) {
	dir, err := runsDir()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(dir, hex.EncodeToString(sum[:8])+".json"), nil
}

// RecordRun records r, replacing an earlier record of the same folder.
func RecordRun(r Run) error {
	file, err := runFile(r.Path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("recording the run of %s: %w", r.Path, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("recording the run of %s: %w", r.Path, err)
	}
	return os.Rename(tmp, file)
}

// FindRun returns the record of the background run of the repository
// folder path (absolute), if one was recorded.
func FindRun(path string) (Run, bool) {
	file, err := runFile(path)
	if err != nil {
		return Run{}, false
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return Run{}, false
	}
	var r Run
	if json.Unmarshal(b, &r) != nil || r.Path != path || r.StateDir == "" {
		return Run{}, false
	}
	return r, true
}

// ForgetRun removes the record of path's run when it still names stateDir
// (a newer run of the same folder may have replaced it).
func ForgetRun(path, stateDir string) {
	if r, ok := FindRun(path); ok && r.StateDir == stateDir {
		if file, err := runFile(path); err == nil {
			_ = os.Remove(file)
		}
	}
}
