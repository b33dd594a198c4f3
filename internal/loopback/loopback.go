// Package loopback finds TCP ports on 127.0.0.1 for servers that must keep
// their port across restarts: a restarted etcd, a weir process restarted by
// a test, a proxy that closes and reopens its listener.
//
// A port the kernel hands out for ":0" lies in the ephemeral range, the same
// range it picks the source ports of outgoing connections from. While such a
// server is down, a client retrying to reach it can be given that very port
// as its own source port (a TCP self-connect), and the restarted server then
// fails with "address already in use". Ports below the ephemeral range are
// never given to outgoing connections, so FreePort picks from there.
package loopback

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the first port FreePort considers: above the well-known and the
// usual fixed service ports.
const lowest = 10000

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on, below
// the kernel's ephemeral range when that range leaves room, and from the
// kernel otherwise.
func FreePort() (int, error) {
	high := ephemeralStart()
	for range 100 {
		if high <= lowest {
			break
		}
		port := lowest + rand.IntN(high-lowest)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePorts returns n distinct free ports, as FreePort finds them.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	seen := map[int]bool{}
	for len(ports) < n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// ephemeralStart reads the first port of the kernel's ephemeral range
// (32768 on Linux by default).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
