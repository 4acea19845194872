package egress

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// normalizeUpstream accepts "ip", "ip:port" or "[ip6]:port" and returns
// "ip:port" (port 53 by default).
func normalizeUpstream(s string) (string, error) {
	s = strings.TrimSpace(s)
	host, port := s, "53"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("upstream %q: not an IP address (names cannot bootstrap the resolver)", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("upstream %q: bad port", s)
	}
	return net.JoinHostPort(a.String(), strconv.Itoa(n)), nil
}

// parseResolvConf returns the nameservers of a resolv.conf file.
func parseResolvConf(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			if u, err := normalizeUpstream(f[1]); err == nil {
				out = append(out, u)
			}
		}
	}
	return out
}
