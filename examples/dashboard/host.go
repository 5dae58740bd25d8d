package main

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
)

// hostCheck guards against DNS rebinding: a page on another site whose
// name was made to resolve to 127.0.0.1 could otherwise read the event
// stream and history, since to the browser it is the same origin. Only
// requests whose Host header names this server are answered: the listen
// address, localhost, 127.0.0.1 and [::1] with the listen port, and what
// -allow-host lists ("name" with any port, or "name:port").
type hostCheck struct {
	exact   []string // host:port, lower case
	anyPort []string // host, lower case
}

// newHostCheck allows addr (the address the server listens on) and its
// loopback names, and extra.
func newHostCheck(addr string, extra []string) hostCheck {
	var hc hostCheck
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		for _, h := range []string{"localhost", "127.0.0.1", "::1", host} {
			if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
				continue // 0.0.0.0 or [::] is not a name a browser uses
			}
			hc.exact = append(hc.exact, strings.ToLower(net.JoinHostPort(h, port)))
			if port == "80" {
				hc.anyPort = append(hc.anyPort, strings.ToLower(h)) // browsers leave the default port out
			}
		}
	}
	for _, e := range extra {
		e = strings.ToLower(e)
		if _, _, err := net.SplitHostPort(e); err == nil {
			hc.exact = append(hc.exact, e)
		} else {
			hc.anyPort = append(hc.anyPort, strings.Trim(e, "[]"))
		}
	}
	return hc
}

// allows reports whether a request's Host header names this server.
func (hc hostCheck) allows(hostHeader string) bool {
	h := strings.ToLower(hostHeader)
	if slices.Contains(hc.exact, h) {
		return true
	}
	name := h
	if n, _, err := net.SplitHostPort(h); err == nil {
		name = n
	}
	return slices.Contains(hc.anyPort, strings.Trim(name, "[]"))
}

// wrap answers requests for other hosts, pages, API and WebSocket upgrades
// alike, with 421 Misdirected Request and what to do about it.
func (hc hostCheck) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hc.allows(r.Host) {
			http.Error(w, fmt.Sprintf("dashboard: host %q is not served here (a guard against DNS rebinding); "+
				"open the dashboard as %s, or start it with -allow-host %s", clip(r.Host), hc.primary(), allowName(r.Host)),
				http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// primary is the first allowed host, for messages.
func (hc hostCheck) primary() string {
	if len(hc.exact) > 0 {
		return hc.exact[0]
	}
	if len(hc.anyPort) > 0 {
		return hc.anyPort[0]
	}
	return "localhost"
}

// allowName is the -allow-host value that would allow host: its name.
func allowName(host string) string {
	if n, _, err := net.SplitHostPort(host); err == nil {
		host = n
	}
	if host == "" {
		return "NAME"
	}
	return clip(host)
}

// clip bounds text from a request for a message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// parseAllowHosts checks an -allow-host value: comma-separated host names
// or host:port pairs.
func parseAllowHosts(v string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" || strings.ContainsAny(e, "/ \t@?#") {
			return nil, fmt.Errorf("-allow-host %q: want a host name or host:port", e)
		}
		out = append(out, e)
	}
	return out, nil
}
