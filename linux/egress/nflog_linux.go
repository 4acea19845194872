package egress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nfnetlink_log constants (linux/netfilter/nfnetlink_log.h); x/sys lacks them.
const (
	nfnlSubsysULOG    = 4
	nfulnlMsgPacket   = 0
	nfulnlMsgConfig   = 1
	nfulaCfgCmd       = 1
	nfulaCfgMode      = 2
	nfulnlCfgCmdBind  = 1
	nfulnlCopyPacket  = 2
	nfulaPayload      = 9
	nfulaPrefix       = 10
	nfulaUID          = 11
	nfulnlCopyRange   = logSnaplen
	nfnetlinkVersion0 = 0
)

// nflog receives the packets the table logs to NFLogGroup in one namespace.
// It reads the socket as a file: the socket may have been bound by another
// process (the runtime, for a monitor that starts its Go stage later: see
// GateSockets), and netlink.Conn cannot be made from a descriptor.
type nflog struct {
	f   *os.File
	buf []byte
}

// dialNFLogFD binds a netfilter netlink socket created inside the
// namespace nsfd to group (log instances are per namespace) and returns
// its descriptor (non-blocking, close-on-exec), the caller's to own.
func dialNFLogFD(nsfd int, group uint16) (int, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsfd})
	if err != nil {
		return -1, fmt.Errorf("nflog socket: %w", err)
	}
	defer c.Close()
	cmd := netlink.Attribute{Type: nfulaCfgCmd, Data: []byte{nfulnlCfgCmdBind}}
	mode := make([]byte, 6) // struct nfulnl_msg_config_mode: be32 range, u8 mode, u8 pad
	binary.BigEndian.PutUint32(mode, nfulnlCopyRange)
	mode[4] = nfulnlCopyPacket
	for _, a := range []netlink.Attribute{cmd, {Type: nfulaCfgMode, Data: mode}} {
		if err := nflogConfig(c, group, a); err != nil {
			return -1, err
		}
	}
	// A duplicate outlives the Conn; the socket (non-blocking, as the
	// Conn made it) keeps its binding.
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("nflog socket: %w", err)
	}
	dup := -1
	cerr := rc.Control(func(fd uintptr) { dup, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
	if cerr != nil || err != nil {
		return -1, fmt.Errorf("nflog socket: %w", errors.Join(cerr, err))
	}
	return dup, nil
}

// dialNFLogFile is dialNFLogFD as a file (to hand to another process).
func dialNFLogFile(nsfd int, group uint16) (*os.File, error) {
	fd, err := dialNFLogFD(nsfd, group)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "nflog"), nil
}

// dialNFLog is dialNFLogFD, ready to receive.
func dialNFLog(nsfd int, group uint16) (*nflog, error) {
	fd, err := dialNFLogFD(nsfd, group)
	if err != nil {
		return nil, err
	}
	return newNFLog(fd)
}

// newNFLog receives from fd, a bound nflog socket (its own, or inherited:
// a descriptor handed to a child through exec.Cmd comes blocking). It
// takes fd over.
func newNFLog(fd int) (*nflog, error) {
	// Non-blocking, so that the File is polled and Close ends a pending
	// read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nflog socket: %w", err)
	}
	return &nflog{f: os.NewFile(uintptr(fd), "nflog"), buf: make([]byte, 1<<16)}, nil
}

func nflogConfig(c *netlink.Conn, group uint16, a netlink.Attribute) error {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{a})
	if err != nil {
		return err
	}
	hdr := []byte{unix.AF_UNSPEC, nfnetlinkVersion0, 0, 0}
	binary.BigEndian.PutUint16(hdr[2:], group)
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(nfnlSubsysULOG<<8 | nfulnlMsgConfig),
			Flags: netlink.Request | netlink.Acknowledge,
		},
		Data: append(hdr, attrs...),
	})
	if err != nil {
		return fmt.Errorf("nflog config group %d: %w", group, err)
	}
	return nil
}

func (l *nflog) Close() error { return l.f.Close() }

// loggedPacket is what the gate reports of a denied packet.
type loggedPacket struct {
	prefix   string
	proto    uint8
	src, dst netip.Addr
	sport    uint16
	dport    uint16 // or the ICMP type for ICMP
	uid      string
}

// receive blocks for the next batch of logged packets.
func (l *nflog) receive() ([]loggedPacket, error) {
	n, err := l.f.Read(l.buf)
	if err != nil {
		// The socket buffer overflowed under a flood: packets were lost
		// (the log is rate-limited anyway), the socket is still good.
		if errors.Is(err, unix.ENOBUFS) {
			return nil, nil
		}
		return nil, err
	}
	msgs, err := syscall.ParseNetlinkMessage(l.buf[:n])
	if err != nil {
		return nil, nil // a truncated batch: nothing usable in it
	}
	var out []loggedPacket
	for _, m := range msgs {
		if m.Header.Type != nfnlSubsysULOG<<8|nfulnlMsgPacket || len(m.Data) < 4 {
			continue
		}
		if p, ok := parseNFLogPacket(m.Data[4:]); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// parseNFLogPacket decodes the attributes of one NFULNL_MSG_PACKET.
func parseNFLogPacket(b []byte) (loggedPacket, bool) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return loggedPacket{}, false
	}
	var p loggedPacket
	var payload []byte
	for ad.Next() {
		switch ad.Type() {
		case nfulaPrefix:
			p.prefix = strings.TrimRight(string(ad.Bytes()), "\x00")
		case nfulaPayload:
			payload = ad.Bytes()
		case nfulaUID:
			if d := ad.Bytes(); len(d) == 4 {
				p.uid = strconv.FormatUint(uint64(binary.BigEndian.Uint32(d)), 10)
			}
		}
	}
	if ad.Err() != nil {
		return loggedPacket{}, false
	}
	return p, parseIPHeaders(payload, &p)
}

// parseIPHeaders fills addresses, protocol and ports from a packet that
// starts at its IP header.
func parseIPHeaders(b []byte, p *loggedPacket) bool {
	if len(b) < 1 {
		return false
	}
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return false
		}
		p.proto = b[9]
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		l4 = b[ihl:]
	case 6:
		if len(b) < 40 {
			return false
		}
		p.proto = b[6]
		p.src = netip.AddrFrom16([16]byte(b[8:24]))
		p.dst = netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40:]
	default:
		return false
	}
	switch p.proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_UDPLITE:
		if len(l4) >= 4 {
			p.sport = binary.BigEndian.Uint16(l4[0:2])
			p.dport = binary.BigEndian.Uint16(l4[2:4])
		}
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		if len(l4) >= 1 {
			p.dport = uint16(l4[0])
		}
	}
	return true
}

// protoName names an IP protocol for audit details.
func protoName(p uint8) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_SCTP:
		return "sctp"
	case unix.IPPROTO_UDPLITE:
		return "udplite"
	case unix.IPPROTO_ICMP:
		return "icmp"
	case unix.IPPROTO_ICMPV6:
		return "icmpv6"
	}
	return strconv.Itoa(int(p))
}
