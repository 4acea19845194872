//go:build linux

// Command kaudit reads or sets the kernel's audit switch, for the demo:
// Landlock reports denials (fs.deny) through kernel audit, which is off on
// many hosts. The demo turns it on for its run and restores it.
//
//	kaudit status | on | off
package main

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func request(s int, typ uint16, payload []byte) error {
	msg := make([]byte, 16+len(payload))
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	copy(msg[16:], payload)
	return unix.Sendto(s, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kaudit status|on|off")
		os.Exit(2)
	}
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kaudit:", err)
		os.Exit(1)
	}
	defer unix.Close(s)
	_ = unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	switch os.Args[1] {
	case "status":
		if err := request(s, unix.AUDIT_GET, nil); err != nil {
			fmt.Fprintln(os.Stderr, "kaudit:", err)
			os.Exit(1)
		}
		buf := make([]byte, 8192)
		for {
			n, _, err := unix.Recvfrom(s, buf, 0)
			if err != nil {
				fmt.Fprintln(os.Stderr, "kaudit:", err)
				os.Exit(1)
			}
			if n >= 24 && binary.NativeEndian.Uint16(buf[4:]) == unix.AUDIT_GET {
				if binary.NativeEndian.Uint32(buf[20:]) != 0 {
					fmt.Println("on")
				} else {
					fmt.Println("off")
				}
				return
			}
		}
	case "on", "off":
		p := make([]byte, 40)
		binary.NativeEndian.PutUint32(p[0:], unix.AUDIT_STATUS_ENABLED)
		if os.Args[1] == "on" {
			binary.NativeEndian.PutUint32(p[4:], 1)
		}
		if err := request(s, unix.AUDIT_SET, p); err != nil {
			fmt.Fprintln(os.Stderr, "kaudit:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: kaudit status|on|off")
		os.Exit(2)
	}
}
