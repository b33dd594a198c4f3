package bucket

import "testing"

func TestObjectKeysThatLeaveTheRootAreRefused(t *testing.T) {
	for key, ok := range map[string]bool{
		"apps/app.yaml":  true,
		"a..b/c":         true,
		".hidden/x":      true,
		"../etc/passwd":  false,
		"apps/../../x":   false,
		"/etc/passwd":    false,
		"apps//app.yaml": false,
		"./app.yaml":     false,
		"apps/..":        false,
		"a\x00b":         false,
	} {
		if err := checkKey(key); (err == nil) != ok {
			t.Errorf("checkKey(%q) = %v, want ok=%v", key, err, ok)
		}
	}
}
